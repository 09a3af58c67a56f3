//! Load generator: end-to-end signed verifications over HTTP on loopback, durable (SQLite WAL,
//! synchronous=FULL, group commit), 64 concurrent clients, on this machine. The server and the
//! clients share the machine's cores (the clients sign every request with Ed25519 twice, like the
//! SDK: body signature and request signature).
//!
//! Prints `RESULT server.verify_e2e_64c throughput=../s p50=..ms p95=..ms p99=..ms ...`.
//! Environment: `AIM_BENCH_SECS` (measured seconds, default 10), `AIM_BENCH_CLIENTS` (64),
//! `AIM_BENCH_TLS=1` (serve and connect over TLS with a certificate made for the run). The
//! server runs with its default limits (rate limits on).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aim_crypto::canonical::Value as Canon;
use aim_crypto::{ActionPayload, AgentKeypair, SignedHeaders};
use aim_server::{Server, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

/// A plaintext or TLS stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The allocator the `aim` binary ships with, so the in-process server is measured as deployed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A minimal HTTP/1.1 keep-alive client connection: the load generator should spend its CPU on
/// signing, not on a general-purpose client's pooling and URL handling. It sends the same
/// request the SDK sends (JSON body, four signature headers) and reads `Content-Length` bodies.
struct Conn {
    stream: Box<dyn Io>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: std::net::SocketAddr, tls: Option<TlsConnector>) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream: Box<dyn Io> = match tls {
            Some(c) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                Box::new(c.connect(name, tcp).await.unwrap())
            }
            None => Box::new(tcp),
        };
        Self {
            stream,
            out: Vec::with_capacity(2048),
            buf: Vec::with_capacity(4096),
        }
    }

    /// POSTs `body` with the signature headers; the response status, or `None` if the
    /// connection failed (then reconnect).
    async fn post(&mut self, path: &str, h: &SignedHeaders, body: &[u8]) -> Option<u16> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             x-agent-id: {}\r\nx-signature: {}\r\nx-timestamp: {}\r\nx-public-key: {}\r\n\
             content-length: {}\r\n\r\n",
            h.agent_id,
            h.signature,
            h.timestamp,
            h.public_key,
            body.len()
        )
        .ok()?;
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await.ok()?;
        // Read the head, then the body by Content-Length.
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).ok()?;
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let len: usize = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })?;
        while self.buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Some(status)
    }
}

struct Agent {
    id: String,
    keys: AgentKeypair,
}

fn body(agent: &Agent, n: u64) -> Vec<u8> {
    let now = chrono::Utc::now();
    let payload = ActionPayload {
        action_type: "read_database".into(),
        agent_id: agent.id.clone(),
        context: Canon::from_serde(
            &serde_json::json!({"query": "SELECT * FROM orders WHERE id = ?", "n": n, "ratio": 0.25}),
        ),
        resource: Some(format!("orders/{n}")),
        timestamp: now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        risk_level: None,
    };
    let signature = payload.sign(&agent.keys).to_b64();
    let mut map = BTreeMap::new();
    map.insert("action_type".to_owned(), Canon::String(payload.action_type));
    map.insert("agent_id".to_owned(), Canon::String(payload.agent_id));
    map.insert("context".to_owned(), payload.context);
    map.insert(
        "resource".to_owned(),
        payload.resource.map_or(Canon::Null, Canon::String),
    );
    map.insert("timestamp".to_owned(), Canon::String(payload.timestamp));
    map.insert("signature".to_owned(), Canon::String(signature));
    map.insert(
        "public_key".to_owned(),
        Canon::String(agent.keys.public_key().to_b64()),
    );
    Canon::Object(map).to_python_json().into_bytes()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = env_u64("AIM_BENCH_SECS", 10);
    let clients = env_u64("AIM_BENCH_CLIENTS", 64) as usize;
    let dir = tempfile::tempdir().unwrap();

    // The server on its own runtime (2 worker threads: the machine's cores).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("aim-server")
        .build()
        .unwrap();
    // Default limits (rate limits on): the measured load must pass through them.
    let mut config = ServerConfig::new(dir.path()).with_addr("127.0.0.1:0".parse().unwrap());
    config.metrics_token = Some(aim_server::MetricsToken::new(METRICS_TOKEN).unwrap());
    let tls_pem = (env_u64("AIM_BENCH_TLS", 0) == 1).then(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        config.tls = Some(aim_server::TlsFiles::new(cert, key));
        ck.cert.pem()
    });
    let tls = tls_pem.is_some();
    let connector = tls_pem.as_ref().map(|pem| {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    });
    let http = {
        let mut b = reqwest::Client::builder().http1_only();
        if let Some(pem) = &tls_pem {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
        }
        b.build().unwrap()
    };
    let metrics_http = http.clone();
    let (server, admin_key) = server_rt.block_on(async {
        let init = aim_server::init(&config, "Bench", "admin@bench.test")
            .await
            .unwrap();
        let server = Server::start(config.clone()).await.unwrap();
        (server, init.admin_api_key.expose().to_owned())
    });
    let url = server.url();
    let server_addr = server.addr();

    // The clients on theirs: one thread is enough for 64 keep-alive connections.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("aim-bench-client")
        .build()
        .unwrap();
    let (throughput, lat, errors, total) = client_rt.block_on(async move {
        // One agent per client, each granted read_*.
        let mut agents = Vec::with_capacity(clients);
        for i in 0..clients {
            let keys = AgentKeypair::generate().unwrap();
            let r: serde_json::Value = http
                .post(format!("{url}/api/v1/public/agents/register"))
                .header("x-aim-api-key", &admin_key)
                .json(&serde_json::json!({"name": format!("bench-{i}"), "public_key": keys.public_key().to_b64()}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = r["agent_id"].as_str().unwrap().to_owned();
            let s = http
                .post(format!("{url}/api/v1/agents/{id}/capabilities"))
                .header("x-api-key", &admin_key)
                .json(&serde_json::json!({"capability": "read_*"}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(s, 201);
            agents.push(Arc::new(Agent { id, keys }));
        }
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let path = "/api/v1/sdk-api/verifications";
        let addr = server_addr;
        let mut tasks = Vec::new();
        for agent in agents {
            let measuring = Arc::clone(&measuring);
            let stop = Arc::clone(&stop);
            let connector = connector.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::connect(addr, connector.clone()).await;
                let mut lat = Vec::with_capacity(8192);
                let mut errors = 0u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Freshly signed, like the SDK: body signature over the canonical payload
                    // (fresh timestamp) and request signature headers (fresh timestamp).
                    let b = body(&agent, n);
                    let ts = chrono::Utc::now().timestamp() as u64;
                    let h = agent.keys.sign_request(&agent.id, "POST", path, ts, &b);
                    let started = Instant::now();
                    let status = conn.post(path, &h, &b).await;
                    let ok = status == Some(201);
                    if status.is_none() {
                        conn = Conn::connect(addr, connector.clone()).await;
                    }
                    let elapsed = started.elapsed();
                    if measuring.load(Ordering::Relaxed) {
                        if ok {
                            lat.push(elapsed.as_secs_f64() * 1000.0);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // warm-up
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        let total = all.len();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (total as f64 / elapsed, all, errors, total)
    });

    // Everything answered was durable: count the stored verifications.
    let stored: i64 = server_rt.block_on(async {
        let (_, body) = (
            0,
            metrics(&metrics_http, &server.url())
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        let line = body
            .lines()
            .find(|l| l.starts_with("aim_decisions_total{outcome=\"approved\"}"))
            .unwrap_or("x 0")
            .to_owned();
        line.rsplit(' ').next().unwrap().parse().unwrap_or(0)
    });
    let batches = server_rt.block_on(async {
        let text = metrics(&metrics_http, &server.url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let get = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let count = get("aim_write_batch_size_count");
        let sum = get("aim_write_batch_size_sum");
        let run = get("aim_write_batch_run_seconds_sum");
        let commit = get("aim_write_commit_seconds_sum");
        let per = |x: f64| if count > 0.0 { x / count } else { 0.0 };
        (per(sum), per(run) * 1000.0, per(commit) * 1000.0)
    });
    server_rt.block_on(server.shutdown()).unwrap();

    let (p50, p95, p99) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
        percentile(&lat, 0.99),
    );
    let transport = if tls { "TLS 1.3" } else { "plaintext" };
    let verdict = if throughput >= 5000.0 && p99 <= 25.0 && errors == 0 {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "RESULT server.verify_e2e_{clients}c throughput={throughput:.0}/s p50={p50:.2}ms p95={p95:.2}ms p99={p99:.2}ms \
         ({total} approved in {secs}s measured, {errors} errors, {stored} decisions committed, mean batch {:.1} writes/commit, {:.2}ms running + {:.2}ms committing; \
         SQLite WAL synchronous=FULL; {transport}, default rate limits on; clients on the same 2 cores) target>=5000/s,p99<=25ms {verdict}",
        batches.0, batches.1, batches.2
    );
}

/// The bench server's `/metrics` token.
const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

async fn metrics(http: &reqwest::Client, url: &str) -> reqwest::Result<reqwest::Response> {
    http.get(format!("{url}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
}
