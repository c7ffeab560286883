//! A broker outage on demand: a TCP relay in front of a broker that understands Kafka's framing
//! (every request and response is a 4-byte length and a body). Taking it down acts as a broker's
//! controlled shutdown does: requests already forwarded get their responses, then every connection
//! closes, and new connections are refused until it is brought up again. The broker keeps its data
//! (memory storage would lose it in a real restart), and no produce request is cut in half.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    up: AtomicBool,
    down: Notify,
    open: AtomicUsize,
}

pub struct BrokerProxy {
    pub address: SocketAddr,
    state: Arc<State>,
}

impl BrokerProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(State::default());
        state.up.store(true, Ordering::SeqCst);
        let accepting = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let state = Arc::clone(&accepting);
                tokio::spawn(async move {
                    state.open.fetch_add(1, Ordering::SeqCst);
                    if let Ok(broker) = TcpStream::connect(upstream).await {
                        relay(client, broker, &state).await;
                    }
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self { address, state }
    }

    /// The broker goes away: in-flight requests are answered, then every connection closes.
    pub async fn take_down(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        self.state.down.notify_waiters();
        while self.state.open.load(Ordering::SeqCst) > 0 {
            self.state.down.notify_waiters();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn bring_up(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let length = usize::try_from(u32::from_be_bytes(size)).expect("frame sizes fit");
    let mut frame = vec![0u8; 4 + length];
    frame[..4].copy_from_slice(&size);
    stream.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

async fn relay(client: TcpStream, broker: TcpStream, state: &State) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let outstanding = Arc::new(AtomicI64::new(0));
    let answered = Arc::clone(&outstanding);
    let responses = tokio::spawn(async move {
        while let Ok(frame) = read_frame(&mut broker_read).await {
            if client_write.write_all(&frame).await.is_err() {
                break;
            }
            answered.fetch_sub(1, Ordering::SeqCst);
        }
    });
    loop {
        let down = state.down.notified();
        if !state.up.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            () = down => break,
            frame = read_frame(&mut client_read) => {
                let Ok(frame) = frame else { break };
                outstanding.fetch_add(1, Ordering::SeqCst);
                if broker_write.write_all(&frame).await.is_err() {
                    break;
                }
            }
        }
    }
    // Answer what the broker already has, then close both sides.
    for _ in 0..400 {
        if outstanding.load(Ordering::SeqCst) <= 0 || responses.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    responses.abort();
}
