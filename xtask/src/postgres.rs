//! A throwaway PostgreSQL cluster for tests: Debian's server binaries, a fresh data directory
//! under `target/xtask/`, a free loopback port, password authentication, stopped and removed
//! whatever happens (the guard stops it on drop, including on error paths).
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` system user
//! that Debian's package creates, otherwise as the calling user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// A running throwaway cluster; stopped and deleted when dropped.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    run_as: Option<&'static str>,
    /// `postgres://aim:PASSWORD@127.0.0.1:PORT/aim`.
    pub(crate) url: String,
}

/// The environment variable through which tests receive the cluster's URL.
pub(crate) const URL_VAR: &str = "AIM_TEST_DATABASE_URL";

impl Cluster {
    /// Creates and starts a cluster under `root/target/xtask/pg-<pid>`.
    pub(crate) fn start(root: &Path) -> Result<Self> {
        let bin = server_bin_dir()?;
        let run_as = is_root().then_some("postgres");
        let parent = root.join("target/xtask");
        reap_stale(&parent, &bin, run_as);
        let dir = parent.join(format!("pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let password = random_password()?;
        let mut cluster = Cluster {
            bin,
            dir,
            run_as,
            url: String::new(),
        };
        cluster.init(&password)?;
        let port = free_port()?;
        cluster.pg_ctl_start(port)?;
        cluster.create_database(port, &password)?;
        cluster.url = format!("postgres://aim:{password}@127.0.0.1:{port}/aim");
        eprintln!(
            "==> PostgreSQL test cluster on 127.0.0.1:{port} ({})",
            cluster.dir.display()
        );
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self, password: &str) -> Result<()> {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, password).context("writing the password file")?;
        if let Some(user) = self.run_as {
            cmd::run("chown", &["-R", user, &self.dir.to_string_lossy()])?;
        }
        let data = self.data();
        self.as_owner(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "aim",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        std::fs::remove_file(&pwfile).context("removing the password file")
    }

    fn pg_ctl_start(&self, port: u16) -> Result<()> {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("server.log");
        self.as_owner(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    fn create_database(&self, port: u16, password: &str) -> Result<()> {
        let program = self.bin.join("createdb").to_string_lossy().into_owned();
        let port = port.to_string();
        let args = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "aim", "aim"];
        cmd::run_env(&program, &args, &[("PGPASSWORD", password)])
    }

    /// Runs one of the cluster's binaries as the cluster's owner.
    fn as_owner(&self, program: &str, args: &[&str]) -> Result<()> {
        run_as_owner(&self.bin, self.run_as, program, args)
    }
}

/// Runs `bin/program ARGS`, through `runuser` when the cluster belongs to another user.
fn run_as_owner(bin: &Path, run_as: Option<&str>, program: &str, args: &[&str]) -> Result<()> {
    let program = bin.join(program).to_string_lossy().into_owned();
    match run_as {
        Some(user) => {
            let mut full = vec!["-u", user, "--", program.as_str()];
            full.extend_from_slice(args);
            cmd::run("runuser", &full)
        }
        None => cmd::run(&program, args),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        stop_and_remove(&self.bin, &self.dir, self.run_as);
    }
}

fn stop_and_remove(bin: &Path, dir: &Path, run_as: Option<&'static str>) {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        let data = data.to_string_lossy().into_owned();
        let stop = ["-D", data.as_str(), "-m", "fast", "-w", "stop"];
        if let Err(err) = run_as_owner(bin, run_as, "pg_ctl", &stop) {
            eprintln!("==> could not stop the PostgreSQL test cluster: {err:#}");
        }
    }
    if let Err(err) = std::fs::remove_dir_all(dir) {
        eprintln!("==> could not remove {}: {err}", dir.display());
    }
}

/// Stops and removes clusters left behind by an earlier run that was killed (Ctrl-C, kill -9).
fn reap_stale(parent: &Path, bin: &Path, run_as: Option<&'static str>) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("pg-") {
            eprintln!("==> removing a PostgreSQL test cluster left by an earlier run");
            stop_and_remove(bin, &entry.path(), run_as);
        }
    }
}

/// Debian's newest installed server version: `/usr/lib/postgresql/<major>/bin`.
fn server_bin_dir() -> Result<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<u32> = std::fs::read_dir(base)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    majors.sort_unstable();
    match majors.last() {
        Some(major) => Ok(base.join(major.to_string()).join("bin")),
        None => bail!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; run as root:\n    \
             apt-get update && apt-get install -y --no-install-recommends postgresql"
        ),
    }
}

fn is_root() -> bool {
    cmd::succeeds("sh", &["-c", "[ \"$(id -u)\" = 0 ]"])
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// 24 random bytes from the kernel, hex-encoded (no shell-special characters).
fn random_password() -> Result<String> {
    let out = Command::new("od")
        .args(["-An", "-tx1", "-N24", "/dev/urandom"])
        .output()
        .context("reading /dev/urandom")?;
    let hex: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    if hex.len() != 48 {
        bail!("could not draw a random password");
    }
    Ok(hex)
}

/// `cargo xtask postgres`: starts a cluster, prints its URL, and keeps it until Enter or Ctrl-C.
pub(crate) fn serve(root: &Path) -> Result<()> {
    let cluster = Cluster::start(root)?;
    println!("{URL_VAR}={}", cluster.url);
    eprintln!("==> press Enter to stop the cluster");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading standard input")?;
    drop(cluster);
    Ok(())
}
