//! Output chunks: order, continuity, reads, binary data ([`crate::OutputStore`]).

use bytes::Bytes;

use super::StoreFactory;
use super::fixtures::{assert_kind, ctx, opts, secs};
use crate::ids::ExecutionId;
use crate::model::{Finish, Lease, OutputChunk, Stream, Timestamp};
use crate::{ErrorKind, OutputBatch, StoreExt};

fn chunk(lease: &Lease, seq: u64, data: Vec<u8>, at: Timestamp) -> OutputChunk {
    OutputChunk {
        execution_id: lease.execution_id,
        seq,
        stream: if seq % 3 == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        data: Bytes::from(data),
        at,
    }
}

fn seqs(chunks: &[OutputChunk]) -> Vec<u64> {
    chunks.iter().map(|c| c.seq).collect()
}

/// Chunks must continue the execution's output without gaps or repeats; a refused batch
/// writes nothing; `output_bytes` counts what was kept.
pub async fn output_order_and_continuity(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("out").await;
    let t = c.system("other").await;
    c.job(&[&s, &t], opts()).await;
    let claims = c.claim("w", 2).await;
    let (cl, other) = (&claims[0], &claims[1]);
    let l = &cl.lease;
    let mut written = Vec::new();
    for seq in 0..3 {
        written.push(chunk(l, seq, format!("line {seq}\n").into_bytes(), c.now()));
    }
    c.store
        .append_output_one(l, written.clone())
        .await
        .expect("append 0..3");

    for (bad, what) in [
        (vec![4], "a gap"),
        (vec![3, 5], "a gap inside the batch"),
        (vec![2], "a repeated seq"),
        (vec![0, 1, 2, 3], "a rewrite"),
        (vec![4, 3], "out of order"),
    ] {
        let chunks = bad
            .iter()
            .map(|seq| chunk(l, *seq, b"x".to_vec(), c.now()))
            .collect();
        assert_kind(
            c.store.append_output_one(l, chunks).await,
            ErrorKind::Conflict,
            what,
        );
    }
    let mut foreign = chunk(l, 3, b"x".to_vec(), c.now());
    foreign.execution_id = other.execution.id;
    assert!(
        c.store.append_output_one(l, vec![foreign]).await.is_err(),
        "a chunk of another execution under this lease is refused"
    );
    assert_eq!(
        c.store
            .read_output(l.execution_id, 0, 100)
            .await
            .expect("read"),
        written,
        "refused batches wrote nothing"
    );

    // Several batches in one call: each on its own.
    let good = OutputBatch {
        lease: l.clone(),
        chunks: vec![chunk(l, 3, b"three\n".to_vec(), c.now())],
    };
    let bad = OutputBatch {
        lease: other.lease.clone(),
        chunks: vec![chunk(&other.lease, 1, b"gap".to_vec(), c.now())],
    };
    let res = c
        .store
        .append_output(&[good.clone(), bad])
        .await
        .expect("append");
    assert!(res[0].is_ok(), "{:?}", res[0]);
    assert_eq!(
        res[1].as_ref().map_err(|e| e.kind()).err(),
        Some(ErrorKind::Conflict)
    );
    written.extend(good.chunks);
    let got = c
        .store
        .read_output(l.execution_id, 0, 100)
        .await
        .expect("read");
    assert_eq!(got, written);
    assert!(
        c.store
            .read_output(other.execution.id, 0, 100)
            .await
            .expect("read")
            .is_empty()
    );
    let bytes: u64 = written.iter().map(|c| c.data.len() as u64).sum();
    let e = c.store.get_execution(l.execution_id).await.expect("get");
    assert_eq!(e.output_bytes, bytes);
    // An empty batch under a current lease is fine and writes nothing.
    c.store
        .append_output_one(l, vec![])
        .await
        .expect("empty batch");
    let done = c
        .store
        .finish_one(l, &Finish::exited(0))
        .await
        .expect("finish");
    assert_eq!(done.execution.output_bytes, bytes);
}

/// `read_output(from, limit)` returns chunks with `seq >= from`, at most `limit`, in order.
pub async fn output_read_from_limit(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("reader").await;
    c.job(&[&s], opts()).await;
    let cl = c.claim("w", 1).await.remove(0);
    let l = &cl.lease;
    let mut all = Vec::new();
    for batch in 0..5u64 {
        let chunks: Vec<_> = (batch * 10..batch * 10 + 10)
            .map(|seq| chunk(l, seq, format!("{seq}").into_bytes(), c.now()))
            .collect();
        c.store
            .append_output_one(l, chunks.clone())
            .await
            .expect("append");
        all.extend(chunks);
        c.advance(secs(1));
    }
    let id = l.execution_id;
    let read = |from, limit| {
        let store = c.store.clone();
        async move { store.read_output(id, from, limit).await.expect("read") }
    };
    assert_eq!(read(0, 1000).await, all);
    assert_eq!(seqs(&read(10, 5).await), (10..15).collect::<Vec<_>>());
    assert_eq!(read(10, 5).await, all[10..15].to_vec());
    assert_eq!(seqs(&read(48, 10).await), vec![48, 49]);
    assert!(read(50, 10).await.is_empty());
    assert_eq!(seqs(&read(0, 3).await), vec![0, 1, 2]);
    assert_kind(
        c.store.read_output(ExecutionId::new(), 0, 10).await,
        ErrorKind::NotFound,
        "read_output of a missing execution",
    );
}

/// Bytes are kept as they came: invalid UTF-8, NULs, CR, large chunks.
pub async fn output_binary_round_trip(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("bin").await;
    c.job(&[&s], opts()).await;
    let cl = c.claim("w", 1).await.remove(0);
    let l = &cl.lease;
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    let datas: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28],
        b"\0\0\r\n\x1b[31mred\x1b[0m".to_vec(),
        "héllo wörld ✓ 🦀".as_bytes().to_vec(),
        vec![0xed, 0xa0, 0x80], // a lone surrogate in CESU form: not UTF-8
        big,
        vec![b'\\', b'\'', b'"', b'%', b'_'],
    ];
    let chunks: Vec<_> = datas
        .into_iter()
        .enumerate()
        .map(|(i, d)| chunk(l, i as u64, d, c.now()))
        .collect();
    c.store
        .append_output_one(l, chunks.clone())
        .await
        .expect("append");
    let got = c
        .store
        .read_output(l.execution_id, 0, 100)
        .await
        .expect("read");
    assert_eq!(got.len(), chunks.len());
    for (g, w) in got.iter().zip(chunks.iter()) {
        assert_eq!(g.data, w.data, "chunk {} bytes", w.seq);
        assert_eq!(g.stream, w.stream, "chunk {} stream", w.seq);
        assert_eq!(g, w);
    }
}

/// Output continues across attempts: the next claim's `next_seq` follows the last chunk.
pub async fn output_continues_across_attempts(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("again").await;
    c.job(&[&s], opts()).await;
    let first = c.claim("w", 1).await.remove(0);
    assert_eq!(first.next_seq, 0);
    let l = &first.lease;
    c.store
        .append_output_one(
            l,
            vec![
                chunk(l, 0, b"attempt 1\n".to_vec(), c.now()),
                chunk(l, 1, b"failed\n".to_vec(), c.now()),
            ],
        )
        .await
        .expect("append");
    c.store
        .finish_one(l, &Finish::retry(c.now(), "exit 1"))
        .await
        .expect("retry");
    let second = c.claim("w", 1).await.remove(0);
    assert_eq!(second.next_seq, 2);
    let l2 = &second.lease;
    assert_kind(
        c.store
            .append_output_one(l2, vec![chunk(l2, 0, b"restart".to_vec(), c.now())])
            .await,
        ErrorKind::Conflict,
        "seq restarting at 0",
    );
    c.store
        .append_output_one(l2, vec![chunk(l2, 2, b"attempt 2\n".to_vec(), c.now())])
        .await
        .expect("append");
    let got = c
        .store
        .read_output(l2.execution_id, 0, 100)
        .await
        .expect("read");
    assert_eq!(seqs(&got), vec![0, 1, 2]);
    let e = c.store.get_execution(l2.execution_id).await.expect("get");
    assert_eq!(e.output_bytes, (10 + 7 + 10) as u64);
}
