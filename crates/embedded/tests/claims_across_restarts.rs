//! Claims made with creations are held in memory and written to the claims table in batches; none is
//! lost across a restart, whether its batch was written or it was still in memory.

use std::path::Path;
use std::sync::Arc;

use kurz_embedded::{EmbeddedLog, LogOptions};
use kurz_ports::conformance::fixtures::{clicked, code, created};
use kurz_ports::{CodeRegistry, CreationLog, EventLog};

fn open(path: &Path) -> Arc<EmbeddedLog> {
    Arc::new(EmbeddedLog::open(path, LogOptions { partitions: 4 }).expect("log opens"))
}

/// Runs `each` for every code at once, so that the writer commits them in large groups.
async fn for_all<T: Send + 'static, F>(
    log: &Arc<EmbeddedLog>,
    codes: &[String],
    each: fn(Arc<EmbeddedLog>, String) -> F,
) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = codes.iter().map(|text| tokio::spawn(each(Arc::clone(log), text.clone()))).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

#[tokio::test]
async fn every_claim_survives_a_restart_written_or_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    // More than a batch of claims (16,384), then enough single creations for every chunk of the
    // batch (1,024 per commit) to be written: some claims are in the table, the rest still in memory
    // when the log closes.
    let mut codes: Vec<String> = (0..20_000).map(|i| format!("c{i:05}")).collect();
    {
        let log = open(&path);
        let fresh = for_all(&log, &codes, |log, text| async move {
            log.claim_and_append(&code(&text), &[created(&text)]).await.expect("create").is_some()
        })
        .await;
        assert!(fresh.iter().all(|&fresh| fresh), "every fresh code is claimed");
        for i in 0..40 {
            let text = format!("single{i:02}");
            assert!(log.claim_and_append(&code(&text), &[created(&text)]).await.expect("create").is_some());
            codes.push(text);
        }
        // Clicks between creations: a restart finds the claims among them without decoding them.
        let clicks: Vec<_> = codes.iter().take(2_000).map(|text| clicked(text, 1, "visitor")).collect();
        log.append(&clicks).await.expect("clicks appended");
        assert!(
            log.claim_and_append(&code("after-clicks"), &[created("after-clicks")]).await.expect("create").is_some()
        );
        codes.push("after-clicks".to_owned());
    }

    let log = open(&path);
    let claimed_again =
        for_all(&log, &codes, |log, text| async move { log.claim(&code(&text)).await.expect("claim") }).await;
    let lost: Vec<&String> =
        codes.iter().zip(&claimed_again).filter(|(_, again)| **again).map(|(text, _)| text).collect();
    assert!(lost.is_empty(), "{} claims lost across the restart, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let again = log.claim_and_append(&code("c00007"), &[created("c00007")]).await.expect("create");
    assert!(again.is_none(), "{again:?}");
    assert!(log.claim_and_append(&code("fresh"), &[created("fresh")]).await.expect("create").is_some());
}
