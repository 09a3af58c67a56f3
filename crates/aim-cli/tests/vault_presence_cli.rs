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
        Self::spawn_with(vault, args, &[])
    }

    /// Like [`Tty::spawn`], with extra environment variables.
    fn spawn_with(vault: &Path, args: &[&str], env: &[(&str, &Path)]) -> Self {
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
            .envs(env.iter().map(|(k, v)| (*k, *v)))
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
    // Changing gates needs a person; nothing is enrolled yet, and a terminal is no person.
    let t = Tty::spawn(&v, &gates);
    let (success, text) = t.finish();
    assert!(!success && text.contains("needs a person"), "{text}");

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
        "already has a presence factor",
    );
    // Now the boundary daemon can be configured, with a code from the enrolled TOTP.
    let mut t = Tty::spawn(&v, &gates);
    t.expect("TOTP code");
    t.type_line(&totp.code_for_step(first_step + 1));
    let (success, text) = t.finish();
    assert!(success && text.contains("boundary daemon:"), "{text}");
    // The next fresh code exists once the clock reaches its step's window.
    while totp.step(now_secs()) < first_step + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }

    // Without a terminal, presence fails closed (level-5 backup asks for presence only).
    refused(&aim_no_tty(&v, &b0), "presence");

    // Level-5 recall on the terminal: approval ("yes"), then the TOTP code.
    let mut recall = with_key(&["recall", "-j", "incident review"]);
    recall.push(&id);
    let mut t = Tty::spawn(&v, &recall);
    t.expect("Type `yes`");
    t.type_line("yes");
    t.expect("TOTP code");
    let code = totp.code_for_step(first_step + 2).to_string();
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

/// The agent alone: its key file, the `aim` CLI and a pseudo-terminal it drives itself. It can
/// neither confirm guesses about a sealed memory by searching, nor change gates, re-enrol the
/// presence factor or leave lockdown.
#[test]
fn an_agent_with_only_its_key_and_a_terminal_passes_no_human_gate() {
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
    let with_key = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--keyfile".to_owned(), keyfile.to_owned()];
        a.extend(args.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |args: &[&str]| aim_no_tty(&v, &as_strs(&with_key(args)));
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "launch code zebra 7781").unwrap();
    let id = ok(&run(&[
        "store",
        "-c",
        "5",
        "--file",
        content.to_str().unwrap(),
    ]))
    .trim()
    .to_owned();

    // Point 5: guessing words answers nothing, and asking for level 5 runs its gates.
    assert_eq!(ok(&run(&["search", "zebra", "7781"])).trim(), "");
    assert_eq!(ok(&run(&["search", "zebra", "7782"])).trim(), "");
    refused(
        &run(&["search", "zebra", "7781", "--max-class", "5"]),
        "justification",
    );
    refused(
        &run(&["search", "zebra", "7781", "--max-class", "5", "-j", "guess"]),
        "denied",
    );
    // Even on a terminal it answers "yes" to itself, level 5 needs the boundary daemon
    // and presence: denied, no id printed.
    let search = with_key(&["search", "zebra", "7781", "--max-class", "5", "-j", "guess"]);
    let (success, text) = Tty::spawn(&v, &as_strs(&search)).finish();
    assert!(!success && !text.contains(&id), "{text}");

    // Point 6: its own socket as boundary daemon, on a terminal it drives: refused.
    let agent_sock = dir.path().join("agent.sock");
    permissive_daemon(&agent_sock);
    let gates = with_key(&["gates", "boundary", agent_sock.to_str().unwrap()]);
    let (success, text) = Tty::spawn(&v, &as_strs(&gates)).finish();
    assert!(!success && text.contains("needs a person"), "{text}");
    assert!(ok(&run(&["gates", "show"])).contains("boundary daemon: none"));

    // Leaving lockdown with the key alone: refused, on a terminal or not.
    ok(&aim_no_tty(&v, &["lockdown", "enter", "--reason", "drill"]));
    refused(&run(&["unlock"]), "needs a person");
    let (success, text) = Tty::spawn(&v, &as_strs(&with_key(&["unlock"]))).finish();
    assert!(!success && text.contains("needs a person"), "{text}");
    assert!(ok(&aim_no_tty(&v, &["lockdown", "status"])).contains("left by: nobody"));

    // A person enrols a TOTP (first enrolment: trust on first use).
    let mut t = Tty::spawn(&v, &as_strs(&with_key(&["presence", "enroll-totp"])));
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
    let step = totp.step(now_secs());
    t.type_line(&totp.code_for_step(step));
    let (success, text) = t.finish();
    assert!(success, "{text}");

    // Re-enrolling on the agent's terminal asks for the enrolled factor FIRST; without the
    // right code no new secret is ever shown.
    let mut t = Tty::spawn(
        &v,
        &as_strs(&with_key(&["presence", "enroll-totp", "--replace"])),
    );
    t.expect("TOTP code");
    let right = totp.code_at(now_secs()).to_string();
    t.type_line(if right == "000000" {
        "111111"
    } else {
        "000000"
    });
    let (success, text) = t.finish();
    assert!(!success && text.contains("needs a person"), "{text}");
    assert!(
        !text.contains("secret:") && !text.contains("otpauth"),
        "{text}"
    );
    refused(
        &run(&["presence", "enroll-totp", "--replace"]),
        "needs a person",
    );
    // Lockdown stays without the code too.
    refused(&run(&["unlock"]), "needs a person");
    // With the person's code, lockdown is left.
    let mut t = Tty::spawn(&v, &as_strs(&with_key(&["unlock"])));
    t.expect("TOTP code");
    t.type_line(&totp.code_for_step(step + 1));
    let (success, text) = t.finish();
    assert!(success && text.contains("left lockdown"), "{text}");
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Point 11: a FIDO2 key as the presence factor of `aim vault`, persisted in the vault; the
/// software authenticator (state file) stands in for the USB key.
#[cfg(feature = "soft-fido2")]
#[test]
fn fido2_presence_in_aim_vault() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    let key = dir.path().join("agent.key");
    let keyfile = key.to_str().unwrap();
    let person_key = dir.path().join("person-fido2.json");
    let agent_key = dir.path().join("agent-fido2.json");
    let with_key = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--keyfile".to_owned(), keyfile.to_owned()];
        a.extend(args.iter().map(|s| (*s).to_owned()));
        a
    };
    let run_as = |fido: &Path, args: &[&str]| {
        Command::new(aim_bin())
            .arg("vault")
            .arg("--vault")
            .arg(&v)
            .args(with_key(args))
            .env_remove("AIM_VAULT")
            .env("AIM_VAULT_SOFT_FIDO2", fido)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
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
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "the launch codes").unwrap();
    let store = || {
        ok(&run_as(
            &person_key,
            &["store", "-c", "5", "--file", content.to_str().unwrap()],
        ))
        .trim()
        .to_owned()
    };
    // Two memories: level 5 cools down for 5 minutes after an allowed recall.
    let (id, other) = (store(), store());
    assert!(ok(&run_as(&person_key, &["presence", "enroll-fido2"])).contains("FIDO2 key enrolled"));
    assert!(ok(&run_as(&person_key, &["presence", "show"])).contains("fido2: enrolled"));
    // The agent's own authenticator cannot replace it (the enrolled key is not touched).
    refused(
        &run_as(&agent_key, &["presence", "enroll-fido2", "--replace"]),
        "needs a person",
    );
    // The enrolled key authorizes gate changes.
    let sock = dir.path().join("boundary.sock");
    permissive_daemon(&sock);
    ok(&run_as(
        &person_key,
        &["gates", "boundary", sock.to_str().unwrap()],
    ));

    // Level-5 recall: approval on the terminal, then the touch of the enrolled key.
    let recall_as = |fido: &Path, id: &str| {
        let recall = with_key(&["recall", "-j", "incident review", id]);
        let mut t = Tty::spawn_with(&v, &as_strs(&recall), &[("AIM_VAULT_SOFT_FIDO2", fido)]);
        t.expect("Type `yes`");
        t.type_line("yes");
        t.finish()
    };
    let (success, text) = recall_as(&person_key, &id);
    assert!(success && text.contains("the launch codes"), "{text}");
    // The agent's own authenticator: presence not confirmed, nothing shown.
    let (success, text) = recall_as(&agent_key, &other);
    assert!(!success && text.contains("physical presence"), "{text}");
    assert!(!text.contains("the launch codes"));
    let (success, text) = recall_as(&person_key, &other);
    assert!(
        success && text.contains("the launch codes"),
        "the counter kept in the vault keeps increasing: {text}"
    );

    // Lockdown: left only with the enrolled key's touch.
    ok(&aim_no_tty(&v, &["lockdown", "enter"]));
    refused(&run_as(&agent_key, &["unlock"]), "needs a person");
    ok(&run_as(&person_key, &["unlock"]));
}
