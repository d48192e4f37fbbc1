//! What only the production backend promises: the real wall clock, and seeds from the operating
//! system. Sockets, files, the clock's pace, named random streams and tasks are checked on both
//! backends by one suite (`sim/tests/env_conformance.rs`).

use net::rand::RngCore;
use net::{Env, TokioEnv};

#[test]
fn wall_clock_is_plausible_and_streams_are_seeded() {
    let env = TokioEnv::with_seed(42);
    // 2024-01-01 .. 2200-01-01: the real clock, in milliseconds.
    let now = env.unix_millis();
    assert!((1_704_067_200_000..7_258_118_400_000).contains(&now), "{now}");

    let again = TokioEnv::with_seed(42);
    assert_eq!(env.rng("x").next_u64(), again.rng("x").next_u64());
    assert_ne!(env.rng("x").next_u64(), env.rng("y").next_u64());
    assert!(!env.buggify("anything"), "the fault hook never fires in production");

    let os_seeded = TokioEnv::new().unwrap();
    let other = TokioEnv::new().unwrap();
    assert_ne!(os_seeded.seed(), other.seed());
}
