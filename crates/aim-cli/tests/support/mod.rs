//! A real AIM server on a loopback port and the `aim` binary, shared by the CLI tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// The real server (temp data dir, initialized) and a temp `AIM_HOME` holding the admin key.
pub(crate) struct Server {
    pub url: String,
    pub key_file: std::path::PathBuf,
    pub home: tempfile::TempDir,
    _data: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts an initialized server on an ephemeral loopback port.
pub(crate) fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config =
        aim_server::ServerConfig::new(data.path()).with_addr("127.0.0.1:0".parse().unwrap());
    let (url, key) = rt.block_on(async {
        let init = aim_server::init(&config, "Acme", "admin@acme.test")
            .await
            .unwrap();
        let server = aim_server::Server::start(config).await.unwrap();
        let url = server.url();
        tokio::spawn(async move {
            let _server = server;
            std::future::pending::<()>().await;
        });
        (url, init.admin_api_key.expose().to_owned())
    });
    let key_file = home.path().join("admin.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    Server {
        url,
        key_file,
        home,
        _data: data,
        rt: Some(rt),
    }
}

/// Runs the `aim` binary with `AIM_HOME=home` and a clean environment.
pub(crate) fn aim(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aim"))
        .args(args)
        .env("AIM_HOME", home)
        .env("AIM_PASSPHRASE", "cli test passphrase")
        .env("AIM_KDF", "argon2id$v=19$m=64,t=1,p=1")
        .env_remove("AIM_API_KEY")
        .env_remove("AIM_API_KEY_FILE")
        .env_remove("AIM_SERVER")
        .env_remove("AIM_CONFIG")
        .output()
        .unwrap()
}

impl Server {
    /// Runs `aim ARGS --server URL --api-key-file KEY`; panics unless it succeeds.
    pub(crate) fn run(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url, "--api-key-file"]);
        all.push(self.key_file.to_str().unwrap());
        let out = aim(self.home.path(), &all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "aim {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Creates a `registration` API key (registers agents, nothing else) and returns the file
    /// holding it: what an agent's process should hold.
    pub(crate) fn registration_key_file(&self) -> std::path::PathBuf {
        let key = self.json(&["key", "create", "agents", "--role", "registration"]);
        assert_eq!(key["role"], "registration", "{key}");
        let path = self.home.path().join("registration.key");
        std::fs::write(&path, format!("{}\n", key["api_key"].as_str().unwrap())).unwrap();
        path
    }

    /// Runs `aim ARGS --server URL --api-key-file KEY_FILE`; panics unless it succeeds.
    pub(crate) fn run_with_key(&self, key_file: &Path, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url, "--api-key-file"]);
        all.push(key_file.to_str().unwrap());
        let out = aim(self.home.path(), &all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "aim {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// [`Server::run`] with `--json`, parsed.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.run(&all)).unwrap()
    }
}

/// Cheap Argon2id parameters for test profiles (never for real vaults).
pub(crate) const FAST_KDF: &str = "argon2id$v=19$m=64,t=1,p=1";

/// `aim vault --vault VAULT ARGS`, ready to run.
pub(crate) fn vault_command(vault: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aim"));
    cmd.arg("vault")
        .arg("--vault")
        .arg(vault)
        .args(args)
        .env_remove("AIM_VAULT");
    cmd
}

/// Runs `aim vault --vault VAULT ARGS`, writing `stdin` (secrets, as fd 0) to its input.
pub(crate) fn vault(vault: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = vault_command(vault, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts that the command succeeded and returns its stdout.
pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Asserts that the command failed, saying `reason` on stderr.
pub(crate) fn refused(o: &Output, reason: &str) {
    assert!(
        !o.status.success(),
        "unexpected success; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(reason), "{err}");
}
