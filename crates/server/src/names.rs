//! Generated names for things a user did not name: tokens and template versions, in
//! Coder's `adjective_noun<digit>` style.

use rand::seq::IndexedRandom;

pub fn random_name() -> String {
    const ADJECTIVES: &[&str] = &[
        "amber", "brave", "calm", "eager", "fuzzy", "gentle", "jolly", "lucid", "mellow", "nimble",
        "quiet", "swift",
    ];
    const NOUNS: &[&str] = &[
        "badger", "comet", "falcon", "harbor", "lantern", "meadow", "otter", "pebble", "quartz",
        "river", "spruce", "willow",
    ];
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("brave");
    let noun = NOUNS.choose(&mut rng).copied().unwrap_or("otter");
    format!("{adjective}_{noun}{}", rand::random_range(0..10u8))
}
