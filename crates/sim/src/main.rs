//! `sitesync-sim --schedules N [--seed S]`: runs N schedules, seeds S, S+1, …, and
//! closes with `schedules: N passed, M failed`. A failure prints its seed and the one
//! command that replays it. Without `--seed`, seeds start at 0, so CI runs the same
//! schedules each time.

use sitesync_sim::{Bugs, run_schedule};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let (schedules, seed) = match parse(std::env::args().skip(1).collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\nusage: sitesync-sim [--schedules N] [--seed S]");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut failed = 0;
    for seed in seed..seed.saturating_add(schedules) {
        if let Err(e) = run_schedule(seed, Bugs::NONE) {
            failed += 1;
            println!("schedule {seed} failed: {e}");
            println!(
                "  replay: cargo run --release -p sitesync-sim -- --seed {seed} --schedules 1"
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{schedules} schedules in {seconds:.1} s ({:.0}/s)",
        schedules as f64 / seconds.max(1e-9)
    );
    println!("schedules: {} passed, {failed} failed", schedules - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse(args: Vec<String>) -> Result<(u64, u64), String> {
    let (mut schedules, mut seed) = (100, 0);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = value
            .parse()
            .map_err(|_| format!("{flag} takes a whole number, not {value:?}"))?;
        match flag.as_str() {
            "--schedules" => schedules = number,
            "--seed" => seed = number,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok((schedules, seed))
}
