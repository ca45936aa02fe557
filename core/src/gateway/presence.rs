//! Which server ids went offline, so that their status stays visible after they leave.
//!
//! Online ids are the gateway's server registry itself; this only remembers the ids whose last
//! connection left, oldest first, at most [`MAX_OFFLINE_SERVERS`] of them. Both updates happen on
//! server auth and server disconnect, never per frame.

use super::stats::{MAX_OFFLINE_SERVERS, ServerStatus};
use std::collections::VecDeque;

/// Server ids that were online once and are not now, in the order they went offline.
#[derive(Debug, Default)]
pub(crate) struct OfflineServers {
    ids: VecDeque<u32>,
}

impl OfflineServers {
    /// `id` has an authenticated connection again.
    pub(crate) fn came_online(&mut self, id: u32) {
        if let Some(pos) = self.ids.iter().position(|&other| other == id) {
            self.ids.remove(pos);
        }
    }

    /// The last connection holding `id` left; forgets the oldest offline id past the cap.
    pub(crate) fn went_offline(&mut self, id: u32) {
        self.came_online(id);
        self.ids.push_back(id);
        while self.ids.len() > MAX_OFFLINE_SERVERS {
            self.ids.pop_front();
        }
    }

    /// Every known id with its status, sorted by id.
    pub(crate) fn snapshot(&self, online: impl Iterator<Item = u32>) -> Vec<ServerStatus> {
        let mut all: Vec<ServerStatus> = online
            .map(|id| ServerStatus { id, online: true })
            .chain(
                self.ids
                    .iter()
                    .map(|&id| ServerStatus { id, online: false }),
            )
            .collect();
        all.sort_unstable_by_key(|status| status.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_ids_are_kept_until_they_return() {
        let mut offline = OfflineServers::default();
        offline.went_offline(7);
        offline.went_offline(3);
        let listed = offline.snapshot([5].into_iter());
        let expected = [(3, false), (5, true), (7, false)];
        let got: Vec<(u32, bool)> = listed.iter().map(|s| (s.id, s.online)).collect();
        assert_eq!(got, expected);
        offline.came_online(7);
        let got: Vec<u32> = offline
            .snapshot(std::iter::empty())
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(got, [3]);
    }

    #[test]
    fn the_oldest_offline_id_is_forgotten_past_the_cap() {
        let mut offline = OfflineServers::default();
        for id in 0..=MAX_OFFLINE_SERVERS as u32 {
            offline.went_offline(id);
        }
        // Going offline again moves an id to the back instead of listing it twice.
        offline.went_offline(1);
        let listed = offline.snapshot(std::iter::empty());
        assert_eq!(listed.len(), MAX_OFFLINE_SERVERS);
        assert_eq!(listed.first().map(|s| s.id), Some(1));
        assert!(listed.iter().all(|s| !s.online));
    }
}
