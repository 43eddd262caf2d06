//! The focus's view of the Jigasi brewery and Jicofo's gateway selection (jitsi-protocols.md
//! §2.2: `BaseBrewery`, `JigasiDetector.selectJigasi`) and dial error mapping (`JigasiIqHandler`).

use std::collections::BTreeMap;

use jigasi_xmpp::brewery::Stats;

/// One gateway instance in the brewery, keyed by its occupant JID.
#[derive(Debug, Clone, PartialEq)]
pub struct BreweryInstance {
    /// The brewery occupant JID (`JigasiBrewery@internal.auth.<domain>/<nick>`).
    pub occupant: String,
    /// Its last `<stats>`.
    pub stats: Stats,
}

/// What kind of gateway a dial needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// `supports_sip=true` (an ordinary dial-out).
    Sip,
    /// `supports_transcription=true` (`to="jitsi_meet_transcribe"`).
    Transcriber,
}

/// The instances the focus knows, by occupant JID.
#[derive(Debug, Clone, Default)]
pub(crate) struct Brewery {
    instances: BTreeMap<String, BreweryInstance>,
}

impl Brewery {
    /// Records (or updates) an instance from a member presence carrying `<stats>`.
    pub(crate) fn update(&mut self, occupant: &str, stats: Stats) {
        self.instances.insert(
            occupant.to_owned(),
            BreweryInstance {
                occupant: occupant.to_owned(),
                stats,
            },
        );
    }

    /// Forgets an instance (it left or was kicked); returns whether it was known.
    pub(crate) fn remove(&mut self, occupant: &str) -> bool {
        self.instances.remove(occupant).is_some()
    }

    /// Every instance, ordered by occupant JID.
    pub(crate) fn instances(&self) -> Vec<BreweryInstance> {
        self.instances.values().cloned().collect()
    }

    /// `selectJigasi`: drop excluded, shutting-down and incapable instances; then the least
    /// loaded (fewest `participants`) among, in order, those in one of the conference's bridge
    /// regions, those in Jicofo's local region, and finally all. (Jicofo also tries region
    /// *groups* between the first two steps; the stand-in has none configured.)
    pub(crate) fn select(
        &self,
        wanted: Wanted,
        exclude: &[String],
        bridge_regions: &[String],
        local_region: Option<&str>,
    ) -> Option<&BreweryInstance> {
        let eligible: Vec<&BreweryInstance> = self
            .instances
            .values()
            .filter(|instance| !exclude.contains(&instance.occupant))
            .filter(|instance| !instance.stats.graceful_shutdown)
            .filter(|instance| match wanted {
                Wanted::Sip => instance.stats.supports_sip,
                Wanted::Transcriber => instance.stats.supports_transcription,
            })
            .collect();
        let in_region = |regions: &[&str]| {
            eligible
                .iter()
                .copied()
                .filter(|instance| {
                    instance
                        .stats
                        .region
                        .as_deref()
                        .is_some_and(|region| regions.contains(&region))
                })
                .min_by_key(|instance| instance.stats.participants)
        };
        let bridge: Vec<&str> = bridge_regions.iter().map(String::as_str).collect();
        in_region(&bridge)
            .or_else(|| local_region.and_then(|local| in_region(&[local])))
            .or_else(|| {
                eligible
                    .iter()
                    .copied()
                    .min_by_key(|instance| instance.stats.participants)
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stats(participants: u32, region: Option<&str>) -> Stats {
        Stats {
            conferences: 0,
            participants,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: region.map(str::to_owned),
            version: "test".into(),
            supports_transcription: false,
            supports_sip: true,
        }
    }

    fn pick(
        brewery: &Brewery,
        exclude: &[String],
        regions: &[String],
        local: Option<&str>,
    ) -> Option<String> {
        brewery
            .select(Wanted::Sip, exclude, regions, local)
            .map(|i| i.occupant.clone())
    }

    #[test]
    fn least_loaded_capable_instance_wins() {
        let mut brewery = Brewery::default();
        brewery.update("b/a", stats(5, None));
        brewery.update("b/b", stats(2, None));
        let mut shutting_down = stats(0, None);
        shutting_down.graceful_shutdown = true;
        brewery.update("b/c", shutting_down);
        let mut no_sip = stats(0, None);
        no_sip.supports_sip = false;
        brewery.update("b/d", no_sip.clone());
        assert_eq!(pick(&brewery, &[], &[], None).as_deref(), Some("b/b"));
        assert_eq!(
            pick(&brewery, &["b/b".into()], &[], None).as_deref(),
            Some("b/a")
        );
        assert_eq!(
            pick(&brewery, &["b/a".into(), "b/b".into()], &[], None),
            None
        );

        // The transcriber needs supports_transcription.
        no_sip.supports_transcription = true;
        brewery.update("b/d", no_sip);
        let transcriber = brewery.select(Wanted::Transcriber, &[], &[], None).unwrap();
        assert_eq!(transcriber.occupant, "b/d");

        assert!(brewery.remove("b/d"));
        assert!(!brewery.remove("b/d"));
        assert!(
            brewery
                .select(Wanted::Transcriber, &[], &[], None)
                .is_none()
        );
        assert_eq!(brewery.instances().len(), 3);
    }

    #[test]
    fn region_preference_comes_before_load() {
        let mut brewery = Brewery::default();
        brewery.update("b/us", stats(9, Some("us-east-1")));
        brewery.update("b/eu", stats(7, Some("eu-west-1")));
        brewery.update("b/none", stats(0, None));
        let us = ["us-east-1".to_owned()];
        assert_eq!(pick(&brewery, &[], &us, None).as_deref(), Some("b/us"));
        assert_eq!(
            pick(&brewery, &[], &[], Some("eu-west-1")).as_deref(),
            Some("b/eu")
        );
        assert_eq!(
            pick(&brewery, &[], &us, Some("eu-west-1")).as_deref(),
            Some("b/us")
        );
        assert_eq!(
            pick(&brewery, &["b/us".into()], &us, Some("eu-west-1")).as_deref(),
            Some("b/eu")
        );
        assert_eq!(pick(&brewery, &[], &[], None).as_deref(), Some("b/none"));
    }
}
