//! Microbenchmarks of the work every create, redirect and click does: code generation, Avro
//! encode/decode of events, and the projection fold of clicks. Figures in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kurz_domain::stats::{DayStats, StatsDelta};
use kurz_domain::{Code, CodeGenerator, CodeKey, Event, LinkClicked, LinkCreated, LinkSpec, TargetUrl, Timestamp};
use kurz_schemas::{Catalog, Codec};

fn click(i: u64) -> LinkClicked {
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
    ];
    LinkClicked::new(
        Code::parse(&format!("code{:03}", i % 100)).expect("valid"),
        Timestamp::from_millis(1_795_219_200_000 + i64::try_from(i).expect("small") * 1000),
        Some("https://news.example/story"),
        Some(agents[usize::try_from(i % 2).expect("small")]),
        Some(&format!("{:016x}", i % 5000)),
    )
}

fn code_generation(c: &mut Criterion) {
    let generator = CodeGenerator::new(CodeKey::new([7; 16]));
    let mut sequence = 0;
    c.bench_function("code_generation", |b| {
        b.iter(|| {
            sequence += 1;
            black_box(generator.code_for(black_box(sequence)))
        });
    });
}

fn avro(c: &mut Criterion) {
    let codec = Codec::local(Catalog::shipped());
    let clicked = Event::Clicked(click(1));
    let created = Event::Created(LinkCreated {
        code: Code::parse("spring-sale").expect("valid"),
        spec: LinkSpec::new(TargetUrl::parse("https://shop.example.com/sale?utm_source=kurz").expect("valid")),
        custom_alias: true,
        created_at: Timestamp::from_millis(1_795_219_200_000),
        owner: kurz_domain::Owner::admin(),
        key_id: None,
    });
    let mut group = c.benchmark_group("avro");
    group.throughput(Throughput::Elements(1));
    for (name, event) in [("clicked", &clicked), ("created", &created)] {
        let bytes = codec.encode(event).expect("encodes");
        group.bench_function(format!("encode_{name}"), |b| b.iter(|| black_box(codec.encode(black_box(event)))));
        group.bench_function(format!("decode_{name}"), |b| b.iter(|| black_box(codec.decode(black_box(&bytes)))));
    }
    group.finish();
}

fn projection_fold(c: &mut Criterion) {
    let clicks: Vec<LinkClicked> = (0..10_000).map(click).collect();
    let mut group = c.benchmark_group("projection");
    group.throughput(Throughput::Elements(clicks.len() as u64));
    group.bench_function("fold_10k_clicks", |b| {
        b.iter(|| {
            let mut delta = StatsDelta::default();
            for click in &clicks {
                delta.record(&click.fields());
            }
            black_box(delta)
        });
    });
    // A hot link's day row, read and written back once per projection batch: a visitor sketch that
    // has gone dense (thousands of visitors) and a few referrers and agents.
    let mut row = DayStats::default();
    for i in 0..20_000 {
        row.record(&click(i));
    }
    let stored = postcard::to_stdvec(&row).expect("serialises");
    group.throughput(Throughput::Elements(1));
    group.bench_function("store_hot_day_row", |b| {
        b.iter(|| black_box(postcard::to_stdvec(black_box(&row)).expect("serialises")));
    });
    group.bench_function("load_hot_day_row", |b| {
        b.iter(|| black_box(postcard::from_bytes::<DayStats>(black_box(&stored)).expect("deserialises")));
    });
    group.finish();
}

/// One agent classified from scratch (what the projector does once per distinct agent and batch),
/// and the preview check a limited link's redirect makes.
fn agent_classification(c: &mut Criterion) {
    let mut group = c.benchmark_group("agents");
    for (name, agent) in [
        (
            "chrome",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ),
        ("googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        ("slack_preview", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
    ] {
        group.bench_function(format!("classify_{name}"), |b| {
            b.iter(|| black_box(kurz_domain::analytics::Agent::classify(Some(black_box(agent)))));
        });
        group.bench_function(format!("is_preview_{name}"), |b| {
            b.iter(|| black_box(kurz_domain::analytics::is_preview(black_box(agent))));
        });
    }
    group.finish();
}

criterion_group!(benches, code_generation, avro, projection_fold, agent_classification);
criterion_main!(benches);
