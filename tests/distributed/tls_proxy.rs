//! TLS in front of a broker: the test broker (tansu) speaks only plaintext, so a TLS terminator of
//! the test's own stands where a TLS listener would, and the broker advertises its address.

use std::net::SocketAddr;
use std::path::Path;

use tokio::net::{TcpListener, TcpStream};

pub struct TlsTerminator {
    pub address: SocketAddr,
}

impl TlsTerminator {
    /// Accepts TLS with the server certificate and key (PEM), relaying the plaintext to `upstream`.
    pub async fn start(certificate: &Path, key: &Path, upstream: SocketAddr) -> Self {
        let (certificate, key) = (std::fs::read(certificate).expect("certificate"), std::fs::read(key).expect("key"));
        let identity = native_tls::Identity::from_pkcs8(&certificate, &key).expect("a PKCS#8 identity");
        let acceptor = tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).expect("acceptor"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not finish the handshake (one that does not trust the
                    // certificate) simply goes away.
                    let Ok(mut client) = acceptor.accept(client).await else { return };
                    let Ok(mut broker) = TcpStream::connect(upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                });
            }
        });
        Self { address }
    }
}
