//! `cargo xtask quickstart`: the project's main job in one command.
//!
//! Builds the `aim` binary and the Rust quickstart example, starts `aim server` on its embedded
//! SQLite default (a fresh data directory under `target/quickstart/`, a free loopback port),
//! takes the admin API key it prints once, runs the quickstart (an agent registers from Rust,
//! one action is approved, one denied, one approved by a person), shows the server's audit log,
//! and then stops the server — or keeps it serving with `--serve`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Stops the server when the quickstart ends, whichever way it ends.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the quickstart; `args` may hold `--serve`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let serve = match args {
        [] => false,
        [a] if a == "--serve" => true,
        _ => bail!("usage: cargo xtask quickstart [--serve]"),
    };
    cmd::cargo(&["build", "-p", "aim-cli", "--bin", "aim"])?;
    cmd::cargo(&["build", "-p", "aim-client", "--example", "quickstart"])?;
    let target = crate::target_dir(root);
    let aim = target.join("debug").join("aim");
    let example = target.join("debug").join("examples").join("quickstart");

    let work = target.join("quickstart");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear {}", work.display()))?;
    }
    let data_dir = work.join("aim-data");
    let agent_home = work.join("agent-home");
    std::fs::create_dir_all(&agent_home)?;
    let addr = free_loopback_addr()?;
    let url = format!("http://{addr}");

    eprintln!(
        "\n==> aim server --data-dir {} --addr {addr}",
        data_dir.display()
    );
    let mut child = Command::new(&aim)
        .args(["server", "--data-dir"])
        .arg(&data_dir)
        .args(["--addr", &addr])
        .env_remove("AIM_API_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", aim.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let server = ServerGuard(child);
    let admin_key = read_admin_key(stdout)?;

    eprintln!(
        "\n==> quickstart example (agent key store in {})",
        agent_home.display()
    );
    let env = [
        ("AIM_SERVER", url.as_str()),
        ("AIM_API_KEY", admin_key.as_str()),
        ("AIM_HOME", agent_home.to_str().context("non-UTF-8 path")?),
        (
            "AIM_PASSPHRASE",
            "quickstart demo passphrase (use your own)",
        ),
    ];
    let example_str = example.to_string_lossy();
    cmd::run_env(&example_str, &["--approve-as-admin"], &env)?;

    let aim_str = aim.to_string_lossy();
    cmd::run_env(
        &aim_str,
        &["audit", "--server", &url, "--limit", "12"],
        &[("AIM_API_KEY", admin_key.as_str())],
    )?;

    if serve {
        eprintln!(
            "\nThe server keeps running at {url} (data in {}). The admin key was printed above.\n\
             Try: AIM_SERVER={url} AIM_API_KEY=<key> {aim_str} agent list\n\
             Press Ctrl-C to stop.",
            data_dir.display()
        );
        let mut server = server;
        server.0.wait()?;
        return Ok(());
    }
    drop(server);
    eprintln!(
        "\nQuickstart complete; the server was stopped. Its data is in {}.\n\
         Run `cargo xtask quickstart --serve` to keep it serving, or `aim server` yourself.",
        data_dir.display()
    );
    Ok(())
}

/// Echoes the server's stdout and returns the admin API key line, waiting for `listening`.
fn read_admin_key(stdout: std::process::ChildStdout) -> Result<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("[aim server] {line}");
            let _ = tx.send(line);
        }
    });
    let mut key = None;
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).context(
            "`aim server` did not report that it was listening within 60 s (see its output above)",
        )?;
        if line.starts_with("aim_live_") {
            key = Some(line.trim().to_owned());
        } else if line.contains("listening on") {
            break;
        }
    }
    key.context("`aim server` did not print an admin API key on a fresh data directory")
}

/// An address on 127.0.0.1 with a port that was free a moment ago.
fn free_loopback_addr() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.to_string())
}
