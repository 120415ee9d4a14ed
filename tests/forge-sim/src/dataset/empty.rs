//! The `empty` destination dataset: the same users (same usernames and confirmed emails) as the
//! source datasets, an admin, and one top-level group `imported` owned by `ada`. Ids of
//! groups, projects and relations start at 10000 so that they never equal a source's ids.

use super::{Builder, Seeded};
use crate::Dataset;
use crate::model::{Parent, access};

pub fn build(seed: u64) -> Seeded {
    let mut b = Builder::new(Dataset::Empty, seed, 10_000);
    b.users();
    let ada = b.user_id("ada");
    let imported = b.group(
        "Imported",
        "imported",
        None,
        "private",
        "Where migrations land",
    );
    b.member(Parent::Group(imported), ada, access::OWNER);
    Seeded {
        admin_token: b.token("root"),
        owner_token: b.token("ada"),
        repositories: Vec::new(),
        wikis: Vec::new(),
        lfs: Vec::new(),
        designs: Vec::new(),
        store: b.store,
    }
}
