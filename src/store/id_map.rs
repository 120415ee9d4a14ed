//! The id map: for every migrated record, the destination id it became. It is keyed by a mapping scope
//! (source instance + source entity -> destination instance + destination path), not by bulk import, so
//! that a retry of the same migration finds what an earlier one already wrote and never writes it twice.

use super::{ID_MAP, Result, Store};
use sha2::{Digest, Sha256};

/// Identifies one source entity migrated into one destination place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingScope(String);

impl MappingScope {
    pub fn new(
        source_url: &str,
        source_full_path: &str,
        destination: &str,
        destination_full_path: &str,
    ) -> Self {
        let mut h = Sha256::new();
        for part in [
            source_url,
            source_full_path,
            destination,
            destination_full_path,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        MappingScope(hex::encode(&h.finalize()[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Store {
    pub fn mapped_id(
        &self,
        scope: &MappingScope,
        relation: &str,
        source_id: &str,
    ) -> Result<Option<u64>> {
        let tx = self.read()?;
        let table = tx.open_table(ID_MAP)?;
        Ok(table
            .get((scope.as_str(), relation, source_id))?
            .map(|v| v.value()))
    }

    /// Every (source id, destination id) of one relation in one scope.
    pub fn mapped_ids(&self, scope: &MappingScope, relation: &str) -> Result<Vec<(String, u64)>> {
        let tx = self.read()?;
        let table = tx.open_table(ID_MAP)?;
        let mut out = Vec::new();
        for row in table.range((scope.as_str(), relation, "")..)? {
            let (k, v) = row?;
            let (s, r, id) = k.value();
            if s != scope.as_str() || r != relation {
                break;
            }
            out.push((id.to_string(), v.value()));
        }
        Ok(out)
    }
}

impl Store {
    /// Looks up many source ids of one relation in one read transaction.
    pub fn mapped_ids_of(
        &self,
        scope: &MappingScope,
        relation: &str,
        source_ids: &[String],
    ) -> Result<Vec<Option<u64>>> {
        let tx = self.read()?;
        let table = tx.open_table(ID_MAP)?;
        source_ids
            .iter()
            .map(|sid| {
                Ok(table
                    .get((scope.as_str(), relation, sid.as_str()))?
                    .map(|v| v.value()))
            })
            .collect()
    }
}
