//! Distributed-mode throughput on a Kafka-protocol broker: clicks produced through the Kafka event
//! log (idempotent, acks=all, batches in flight as the click recorder sends them), then folded by a
//! consumer-group projector into the Redis read store, from offset 0.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kurz_domain::{Event, LinkClicked, LinkCreated, LinkSpec, TargetUrl, Timestamp};
use kurz_kafka::{GroupConsumer, GroupOptions, KafkaConfig, KafkaEventLog};
use kurz_ports::{EventLog, ReadStore};
use kurz_projector::ReadModels;
use kurz_projector::distributed::StoreSink;
use kurz_redis::{RedisConfig, RedisConnection, RedisReadStore};
use kurz_registry_standin::RegistryStandIn;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use tokio::task::JoinSet;

use crate::bench::{AGENTS, START_MS, codes, cpu_seconds};

#[derive(Debug, clap::Args)]
pub struct KafkaArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// A schema registry; without one, the test stand-in runs in this process.
    #[arg(long)]
    registry: Option<String>,
    /// Events produced: one creation per link, the rest clicks.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    #[arg(long, default_value_t = 10_000)]
    links: u64,
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Clicks per append, as the click recorder batches them.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Appends in flight at once.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
}

pub async fn kafka(args: KafkaArgs) -> anyhow::Result<()> {
    let stand_in = match &args.registry {
        Some(_) => None,
        None => Some(RegistryStandIn::start().await?),
    };
    let registry =
        args.registry.clone().unwrap_or_else(|| stand_in.as_ref().map(RegistryStandIn::url).unwrap_or_default());
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let config = KafkaConfig {
        brokers: args.brokers.clone(),
        topic: format!("kurz-bench-{run}"),
        partitions: args.partitions,
        replication_factor: 1,
        schema_registry_url: registry,
        ..KafkaConfig::default()
    };
    let log = Arc::new(KafkaEventLog::connect(&config).await?);
    let codes = codes(args.links);

    let created: Vec<Event> = codes
        .iter()
        .map(|code| {
            Ok(Event::Created(LinkCreated {
                code: code.clone(),
                spec: LinkSpec::new(TargetUrl::parse(&format!("https://example.com/{code}"))?),
                custom_alias: false,
                created_at: Timestamp::from_millis(START_MS),
                owner: kurz_domain::Owner::admin(),
                key_id: None,
            }))
        })
        .collect::<Result<_, kurz_domain::TargetUrlError>>()?;
    log.append(&created).await?;

    let clicks = args.events.saturating_sub(args.links);
    let (produce_seconds, produce_cpu) = produce_clicks(&log, &codes, clicks, &args).await?;

    let redis = RedisConnection::connect(&RedisConfig {
        url: args.redis.clone(),
        key_prefix: format!("kurz-bench:{run}:"),
        ..RedisConfig::default()
    })
    .await?;
    let store = Arc::new(RedisReadStore::new(redis));
    let total: u64 = log.end_offsets().await?.iter().sum();
    let (project_seconds, project_cpu) = project(&config, &store, args.partitions, total, run).await?;
    store.clear().await?;

    let result = serde_json::json!({
        "broker": args.brokers,
        "events": total,
        "produce_seconds": produce_seconds,
        "produced_per_second": clicks as f64 / produce_seconds,
        "produce_cpu_seconds": produce_cpu,
        "project_seconds": project_seconds,
        "projected_per_second": total as f64 / project_seconds,
        "project_cpu_seconds": project_cpu,
        "note": "load generator, broker, Redis and projector share the machine",
    });
    println!("{result}");
    Ok(())
}

/// Appends `clicks` clicks in batches with appends in flight; returns wall and CPU seconds.
async fn produce_clicks(
    log: &Arc<KafkaEventLog>,
    codes: &[kurz_domain::Code],
    clicks: u64,
    args: &KafkaArgs,
) -> anyhow::Result<(f64, f64)> {
    let popularity = Zipf::new(args.links as f64, 1.0)?;
    let mut rng: SmallRng = rand::make_rng();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut in_flight = JoinSet::new();
    let mut produced = 0;
    while produced < clicks {
        let batch: Vec<Event> = (produced..clicks.min(produced + args.batch as u64))
            .map(|i| {
                #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rank in 1..=links")]
                let rank = popularity.sample(&mut rng) as usize;
                let agent = AGENTS[usize::try_from(i % 3).expect("fits")];
                let visitor = format!("{:016x}", i % 50_000);
                let at = Timestamp::from_millis(START_MS + i64::try_from(i).unwrap_or(i64::MAX));
                Event::Clicked(LinkClicked::new(
                    codes[rank - 1].clone(),
                    at,
                    Some("https://news.example/a"),
                    Some(agent),
                    Some(&visitor),
                ))
            })
            .collect();
        produced += batch.len() as u64;
        if in_flight.len() >= args.in_flight
            && let Some(done) = in_flight.join_next().await
        {
            done??;
        }
        let log = Arc::clone(log);
        in_flight.spawn(async move { log.append(&batch).await.map(drop) });
    }
    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    Ok((started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before))
}

/// Folds the topic from offset 0 with a consumer-group projector until the store's checkpoints
/// reach `total` records; returns wall seconds from the first applied record, and CPU seconds.
async fn project(
    config: &KafkaConfig,
    store: &Arc<RedisReadStore>,
    partitions: u32,
    total: u64,
    run: u128,
) -> anyhow::Result<(f64, f64)> {
    let options = GroupOptions { group_id: format!("kurz-bench-{run}"), ..GroupOptions::default() };
    let consumer = GroupConsumer::join(
        config,
        options,
        Arc::new(StoreSink::new(ReadModels::new(store.clone(), Vec::new()), Vec::new())),
    )
    .await?;
    let stop = consumer.stop_handle();
    let cpu_before = cpu_seconds();
    let joined = Instant::now();
    let worker = tokio::task::spawn_blocking(move || consumer.run());
    // The clock starts at the first applied record: the group join (seconds on tansu) is not work.
    let mut first: Option<Instant> = None;
    loop {
        let applied: u64 = store.checkpoints(partitions).await?.iter().sum();
        if applied > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if applied >= total {
            break;
        }
        anyhow::ensure!(joined.elapsed() < Duration::from_mins(10), "projection did not finish in 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = first.map_or(0.0, |first| first.elapsed().as_secs_f64());
    let cpu = cpu_seconds() - cpu_before;
    stop.stop();
    worker.await?;
    Ok((seconds, cpu))
}
