//! Interned names (services, log templates), so spans and log lines carry small ids.

use std::collections::HashMap;

/// Names, each with a dense id in order of first sight.
#[derive(Debug, Clone, Default)]
pub(super) struct Names {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    /// The id of `name`, added if new.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The id of `name`, if it has one.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of an id handed out by [`Names::id`].
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Adds every name of `other` and returns, for each of `other`'s ids, the id here: files are
    /// parsed with their own tables (in parallel) and merged afterwards.
    pub fn merge(&mut self, other: &Names) -> Vec<u32> {
        other.names.iter().map(|name| self.id(name)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_tables_map_ids_by_name() {
        let mut global = Names::default();
        global.id("b");
        let mut local = Names::default();
        assert_eq!((local.id("a"), local.id("b"), local.id("a")), (0, 1, 0));
        assert_eq!(global.merge(&local), vec![1, 0]);
        assert_eq!(global.name(1), "a");
    }
}
