//! The order in which a group's relations migrate, as GitLab orders them: the group itself first (every
//! other record needs its destination id), then its records, then its subgroups become entities of
//! their own. Relations in one stage run at the same time. Adding a relation = one line here.

use crate::relations::{
    Relation, badges::Badges, boards::Boards, epic_links::EpicLinks, epic_order::EpicOrder,
    epics::Epics, group::Group, group_files::GroupFiles, iterations::CadenceSchedules,
    iterations::Iterations, iterations::IterationsCadences, labels::Labels, members::Members,
    milestones::Milestones,
};

/// The name of the pipeline that turns subgroups into entities (tracked like a relation).
pub const SUBGROUPS: &str = "subgroups";
/// The name of the pipeline that turns a group's projects into entities (tracked like a relation).
pub const PROJECTS: &str = "projects";

pub fn group_stages() -> Vec<Vec<Box<dyn Relation>>> {
    vec![
        vec![Box::new(Group)],
        vec![
            Box::new(GroupFiles),
            Box::new(Labels),
            Box::new(Milestones),
            Box::new(Badges),
            Box::new(IterationsCadences),
            Box::new(Members),
        ],
        vec![Box::new(Iterations), Box::new(Epics)],
        // Board lists point at labels, milestones and iterations, so boards come after all three.
        vec![
            Box::new(Boards),
            Box::new(EpicLinks),
            Box::new(CadenceSchedules),
        ],
        // Children are ordered once their parent links are set.
        vec![Box::new(EpicOrder)],
    ]
}

/// Every relation name of a group, in stage order, with its stage number (for reports).
pub fn group_relation_names() -> Vec<(u8, &'static str)> {
    let mut out: Vec<(u8, &'static str)> = group_stages()
        .iter()
        .enumerate()
        .flat_map(|(i, stage)| stage.iter().map(move |r| (i as u8, r.name())))
        .collect();
    let stages = group_stages().len() as u8;
    out.push((stages, PROJECTS));
    out.push((stages, SUBGROUPS));
    out
}
