//! Every JSON request body of the command API, as a user, an ingest and an admin key would send it:
//! a refusal is a problem with a 4xx status, never a panic.
#![no_main]

use kurz_command_api::{BodyRoute, parse_body};
use kurz_domain::{Actor, KeyId, Owner, Role};
use kurz_service_kit::auth::Caller;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((selector, body)) = input.split_first() else { return };
    let route = match selector % 5 {
        0 => BodyRoute::CreateLink,
        1 => BodyRoute::UpdateLink,
        2 => BodyRoute::RecordClicks,
        3 => BodyRoute::CreateKey,
        _ => BodyRoute::CreateBatch,
    };
    let role = [Role::Admin, Role::User, Role::Ingest][usize::from(selector / 5 % 3)];
    let caller = Caller(Actor {
        key_id: KeyId::parse("fuzz").expect("valid"),
        owner: Owner::parse("fuzzer").expect("valid"),
        role,
    });
    if let Err(problem) = parse_body(route, body, &caller) {
        assert!((400..500).contains(&problem.status), "{problem:?}");
    }
});
