//! `aim vault presence` and level-5 gates end to end: the real binary run under a real
//! pseudo-terminal (util-linux `script`), answering the TOTP prompts with codes computed from
//! the secret the enrolment showed on that terminal. Without a terminal (`setsid`, no
//! controlling TTY) enrolment and presence fail closed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vault_hw::totp::{Totp, TotpParams};

mod support;

use support::{ok, refused};

fn aim_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aim")
}

/// Runs `aim vault --vault V ARGS` with no controlling terminal and empty stdin.
fn aim_no_tty(vault: &Path, args: &[&str]) -> Output {
    Command::new("setsid")
        .arg("-w")
        .arg(aim_bin())
        .arg("vault")
        .arg("--vault")
        .arg(vault)
        .args(args)
        .env_remove("AIM_VAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `aim` running on a pseudo-terminal: what it writes to the terminal is read back, and lines
/// are typed into it.
struct Tty {
    child: Child,
    input: ChildStdin,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Tty {
    fn spawn(vault: &Path, args: &[&str]) -> Self {
        let mut cmd = vec![
            quote(aim_bin()),
            "vault".into(),
            "--vault".into(),
            quote(vault.to_str().unwrap()),
        ];
        cmd.extend(args.iter().map(|a| quote(a)));
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &cmd.join(" "), "/dev/null"])
            .env_remove("AIM_VAULT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux `script` is needed for the terminal tests");
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            input,
            output: rx,
            seen: String::new(),
        }
    }

    /// Waits until the terminal shows `needle`; returns everything shown so far.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!(
                    "the terminal never showed {needle:?}; it shows:\n{}",
                    self.seen
                ),
            }
        }
        self.seen.clone()
    }

    fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
        self.input.flush().unwrap();
    }

    /// Waits for the exit; returns success and everything the terminal showed.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        while let Ok(b) = self.output.recv_timeout(Duration::from_secs(2)) {
            self.seen.push_str(&String::from_utf8_lossy(&b));
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.success(), format!("{}{err}", self.seen))
    }
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("bad base32 {c}"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(buf >> bits).unwrap());
            buf &= (1 << bits) - 1;
        }
    }
    out
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A boundary daemon that permits every recall.
fn permissive_daemon(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            let _ = conn.write_all(b"{\"permitted\":true,\"reason\":\"test\"}\n");
        }
    });
}

#[test]
fn totp_enrolment_and_level_5_gates_on_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    let key = dir.path().join("agent.key");
    let keyfile = key.to_str().unwrap();
    ok(&aim_no_tty(&v, &["init"]));
    ok(&aim_no_tty(
        &v,
        &[
            "profile",
            "create",
            "agent",
            "--with-keyfile",
            keyfile,
            "--new-keyfile",
        ],
    ));
    let k = ["--keyfile", keyfile];
    let with_key = |args: &[&'static str]| -> Vec<&str> {
        let mut a: Vec<&str> = k.to_vec();
        a.extend_from_slice(args);
        a
    };
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "the launch codes").unwrap();
    let mut store = with_key(&["store", "-c", "5", "--file"]);
    store.push(content.to_str().unwrap());
    let id = ok(&aim_no_tty(&v, &store)).trim().to_owned();
    let sock = dir.path().join("boundary.sock");
    permissive_daemon(&sock);
    let mut gates = with_key(&["gates", "boundary"]);
    gates.push(sock.to_str().unwrap());
    ok(&aim_no_tty(&v, &gates));

    // Nothing enrolled: presence is unavailable, even on a terminal.
    assert!(ok(&aim_no_tty(&v, &with_key(&["presence", "show"]))).contains("no presence factor"));
    let black_backup = |name: &str| -> Vec<String> {
        let out = dir.path().join(name);
        let mut a: Vec<String> = k.iter().map(|s| (*s).to_owned()).collect();
        a.extend(
            ["backup", "--include-black", "--profile-key"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        a.push(out.to_str().unwrap().to_owned());
        a
    };
    let b0 = black_backup("b0.bak");
    let b0: Vec<&str> = b0.iter().map(String::as_str).collect();
    refused(&aim_no_tty(&v, &b0), "no presence factor enrolled");

    // Enrolment needs a terminal: the secret is shown nowhere else.
    refused(
        &aim_no_tty(&v, &with_key(&["presence", "enroll-totp"])),
        "needs a terminal",
    );
    // On a terminal: a wrong first code enrols nothing.
    let mut t = Tty::spawn(&v, &with_key(&["presence", "enroll-totp"]));
    let shown = t.expect("First code");
    let secret = shown
        .split("secret: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let totp = Totp::new(
        vault_store::SecretBytes::new(base32_decode(&secret)),
        TotpParams::default(),
    )
    .unwrap();
    let right = totp.code_at(now_secs()).to_string();
    t.type_line(if right == "000000" {
        "111111"
    } else {
        "000000"
    });
    let (success, text) = t.finish();
    assert!(!success && text.contains("nothing was enrolled"), "{text}");
    assert!(ok(&aim_no_tty(&v, &with_key(&["presence", "show"]))).contains("no presence factor"));

    // The right first code enrols.
    let mut t = Tty::spawn(&v, &with_key(&["presence", "enroll-totp"]));
    let shown = t.expect("First code");
    assert!(shown.contains("otpauth://totp/"), "{shown}");
    let secret = shown
        .split("secret: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let totp = Totp::new(
        vault_store::SecretBytes::new(base32_decode(&secret)),
        TotpParams::default(),
    )
    .unwrap();
    let first_step = totp.step(now_secs());
    t.type_line(&totp.code_for_step(first_step));
    let (success, text) = t.finish();
    assert!(success && text.contains("TOTP enrolled"), "{text}");
    assert!(ok(&aim_no_tty(&v, &with_key(&["presence", "show"]))).contains("totp: enrolled"));
    refused(
        &aim_no_tty(&v, &with_key(&["presence", "enroll-totp"])),
        "already has a TOTP",
    );

    // Without a terminal, presence fails closed (level-5 backup asks for presence only).
    refused(&aim_no_tty(&v, &b0), "presence");

    // Level-5 recall on the terminal: approval ("yes"), then the TOTP code.
    let mut recall = with_key(&["recall", "-j", "incident review"]);
    recall.push(&id);
    let mut t = Tty::spawn(&v, &recall);
    t.expect("Type `yes`");
    t.type_line("yes");
    t.expect("TOTP code");
    let code = totp.code_for_step(first_step + 1).to_string();
    t.type_line(&code);
    let (success, text) = t.finish();
    assert!(success && text.contains("the launch codes"), "{text}");

    // The same code again (another process): refused as a replay; a wrong code: refused.
    let b1 = black_backup("b1.bak");
    let b1: Vec<&str> = b1.iter().map(String::as_str).collect();
    let mut t = Tty::spawn(&v, &b1);
    t.expect("TOTP code");
    t.type_line(&code);
    let (success, text) = t.finish();
    assert!(!success && text.contains("already used"), "{text}");
    assert!(!dir.path().join("b1.bak").exists());
}
