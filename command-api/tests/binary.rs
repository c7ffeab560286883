//! The `command-api` binary refuses a deployment it cannot serve, and says why.

kurz_service_kit::refusal_tests!(env!("CARGO_BIN_EXE_command-api"));
