//! Judge throughput against a loopback OpenAI-compatible server with a fixed
//! latency: N = 1, 8, 32 requests in flight through one [`Client`] whose
//! concurrency limit is 32. Under the limit, N calls should take about one
//! latency, so throughput should scale close to N× the single-call rate.
//!
//! `cargo bench -p lem-models --bench concurrency` (criterion reports
//! elements/s: calls per second).

use axum::routing::post;
use axum::{Json, Router};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lem_core::ChatMessage;
use lem_models::{ChatRequest, Client, OpenAiBackend, RetryPolicy};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server's fixed answer time.
const LATENCY: Duration = Duration::from_millis(50);

async fn answer(Json(_): Json<Value>) -> Json<Value> {
    tokio::time::sleep(LATENCY).await;
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": "{\"score\": 7}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5},
    }))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let app = Router::new().route("/v1/chat/completions", post(answer));
        axum::serve(listener, app).await
    });
    let backend =
        OpenAiBackend::new(&format!("http://127.0.0.1:{port}/v1"), "judge", None).unwrap();
    let client = Arc::new(Client::new(Arc::new(backend), 32, RetryPolicy::default()));
    let request = ChatRequest {
        messages: vec![ChatMessage::new("user", "Rate this answer from 1 to 10.")],
        max_tokens: 16,
        temperature: 0.0,
        top_p: None,
        seed: Some(42),
        ..ChatRequest::default()
    };

    let mut group = c.benchmark_group("judge_calls");
    group.sample_size(10);
    for n in [1usize, 8, 32] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("concurrent_{n}"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    rt.block_on(async {
                        let mut calls = tokio::task::JoinSet::new();
                        for _ in 0..n {
                            let (client, request) = (client.clone(), request.clone());
                            calls.spawn(async move { client.complete(&request).await });
                        }
                        while let Some(done) = calls.join_next().await {
                            done.unwrap().unwrap();
                        }
                    });
                }
                started.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
