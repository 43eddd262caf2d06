//! The demo: a real Prosody (Jitsi layout) and a real Kamailio on loopback, the real `jigasi-rs`
//! binary started with Jigasi's flags and a Jigasi-style properties file. It shows the gateway
//! registering at the SIP registrar and joining the brewery where Jicofo looks for gateways,
//! checks both from the outside, and stops the gateway cleanly.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use jigasi_demo::{DemoError, SIP_USER, gateway_binary, startup_scenario};
use jigasi_xmpp::brewery::java_double;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    println!("jigasi-rs demo: gateway start-up against real Prosody and Kamailio on loopback\n");
    match demo().await {
        Ok(()) => {
            println!("\nDEMO PASSED");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("\nDEMO FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<(), DemoError> {
    let binary = gateway_binary()?;
    let report = startup_scenario(&binary, true).await?;
    let stats = &report.stats;
    println!("\nResults");
    println!(
        "  ready (SIP registered + brewery joined) {} ms after start",
        report.ready_after.as_millis()
    );
    println!(
        "  brewery: occupant {} publishes conferences={} participants={} stress_level={} \
         supports_sip={} version={}",
        report.brewery_nick,
        stats.conferences,
        stats.participants,
        java_double(stats.stress_level),
        stats.supports_sip,
        stats.version
    );
    println!(
        "  REST: GET /about/health -> {} {}",
        report.health.0, report.health.1
    );
    println!(
        "  SIP: OPTIONS for sip:{SIP_USER}@<registrar> is routed to the gateway -> {}",
        report.options_while_running
    );
    println!(
        "  SIGTERM: {} after {} ms; graceful_shutdown=true published: {}; left the brewery",
        report.exit,
        report.stopped_after.as_millis(),
        report.graceful_shutdown_published
    );
    println!(
        "  SIP after shutdown: the registrar answers {} (binding removed by un-REGISTER)",
        report.options_after_stop
    );
    let ok = report.health.0 == 200
        && report.options_while_running == 200
        && report.exit.success()
        && report.graceful_shutdown_published
        && report.options_after_stop == 404;
    if !ok {
        return Err(DemoError::Expectation(
            "expected 200 while running, exit 0, graceful_shutdown published and 404 after stop"
                .into(),
        ));
    }
    Ok(())
}
