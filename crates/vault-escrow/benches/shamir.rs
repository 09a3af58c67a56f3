//! Split and combine time for K=3,N=5 and K=10,N=20. Split includes encoding every share as
//! text; combine includes parsing and validating the text shares and the fingerprint check.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aim_crypto::SecretKey;
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;
use vault_escrow::{SplitSpec, combine_text, split};

fn spec(k: u8, n: u8) -> SplitSpec {
    SplitSpec {
        escrow_id: Uuid::new_v4(),
        vault_id: "0123456789abcdef0123456789abcdef".into(),
        profile_id: "agent".into(),
        threshold: k,
        total: n,
    }
}

fn shamir(c: &mut Criterion) {
    let key = SecretKey::generate().unwrap();
    for (k, n) in [(3u8, 5u8), (10, 20)] {
        let s = spec(k, n);
        let id = format!("k{k}_n{n}");
        c.bench_function(&format!("escrow/split/{id}"), |b| {
            b.iter(|| {
                let shares = split(black_box(&s), &key).unwrap();
                shares.iter().map(|sh| sh.to_text()).collect::<Vec<_>>()
            })
        });
        let texts: Vec<String> = split(&s, &key)
            .unwrap()
            .iter()
            .skip(usize::from(n - k))
            .map(|sh| sh.to_text().to_string())
            .collect();
        c.bench_function(&format!("escrow/combine/{id}"), |b| {
            b.iter(|| combine_text(black_box(&texts)).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = shamir
}
criterion_main!(benches);
