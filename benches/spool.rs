//! Throughput of the agent's disk spool for 1.5 KB records (the size of a stream report), in
//! records/s (criterion `Throughput::Elements`; multiply by 1.5 KB for bytes/s):
//! - `append/never`, `append/interval_1s`: `Spool::append` with the fsync policies that do not
//!   flush per record (one `write` per record either way); the spool runs into its 1 GiB cap
//!   during the run, so segment rolls and cap drops are included;
//! - `append/shared`: the same through `SharedSpool` (lock and condvar notify per record);
//! - `read_ack`: `read_batch(1000 records, 1 MiB)` + `ack` over a backlog in the page cache.
//!
//! The spool lives in a temporary directory under `$TMPDIR` (set it to put the spool on the
//! file system you care about). Run: cargo bench -p voqa-agent --bench spool

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voqa_agent::ship::spool::{FsyncPolicy, SharedSpool, Spool, SpoolConfig};

const RECORD_BYTES: usize = 1500;

fn record(i: u64) -> Vec<u8> {
    let mut r = format!("{{\"type\":\"stream\",\"id\":\"agent-1/{i}\",\"report\":\"").into_bytes();
    r.resize(RECORD_BYTES - 2, b'x');
    r.extend_from_slice(b"\"}");
    r
}

fn config(dir: &std::path::Path, fsync: FsyncPolicy) -> SpoolConfig {
    SpoolConfig {
        fsync,
        ..SpoolConfig::new(dir)
    }
}

fn bench(c: &mut Criterion) {
    let rec = record(42);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, fsync) in [
        ("never", FsyncPolicy::Never),
        ("interval_1s", FsyncPolicy::default()),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut spool, _) = Spool::open(config(tmp.path(), fsync)).expect("open");
        group.bench_function(name, |b| {
            b.iter(|| spool.append(&rec).expect("append"));
        });
    }
    {
        let tmp = tempfile::tempdir().expect("tmp");
        let (shared, _) =
            SharedSpool::open(config(tmp.path(), FsyncPolicy::default())).expect("open");
        group.bench_function("shared", |b| {
            b.iter(|| shared.append(&rec).expect("append"));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("read_ack");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut spool, _) = Spool::open(config(tmp.path(), FsyncPolicy::default())).expect("open");
    let mut out = Vec::new();
    group.bench_function("batch_1000", |b| {
        b.iter_custom(|iters| {
            for _ in 0..iters {
                spool.append(&rec).expect("append");
            }
            let start = Instant::now();
            let mut read = 0;
            while let Some(cursor) = spool.read_batch(1000, 1 << 20, &mut out).expect("read") {
                read += out.len() as u64;
                spool.ack(cursor).expect("ack");
            }
            let elapsed = start.elapsed();
            assert_eq!(read, iters);
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
