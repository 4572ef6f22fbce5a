//! A real MQTT broker (`mosquitto`) on a loopback port, and a subscriber (`mosquitto_sub`)
//! whose messages the tests read as JSON.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const MOSQUITTO_SUB: &str = "/usr/bin/mosquitto_sub";
const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A `mosquitto` child listening on 127.0.0.1 only, killed when dropped.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// `user:password` the broker requires, if any.
    credentials: Option<(String, String)>,
    /// TLS with client certificates, when set.
    tls: Option<Pki>,
}

/// A CA, and a certificate for 127.0.0.1 it signed (the broker's, and ours as a client), as
/// PEM files.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// Write a fresh CA and leaf into `dir`.
    pub fn write(dir: &Path) -> Pki {
        use openssl::asn1::Asn1Time;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
        use openssl::x509::{X509NameBuilder, X509};
        std::fs::create_dir_all(dir).expect("PKI folder");
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let new_key = || PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let name = |cn: &str| {
            let mut n = X509NameBuilder::new().unwrap();
            n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
            n.build()
        };
        let (ca_key, leaf_key) = (new_key(), new_key());
        let mut ca = X509::builder().unwrap();
        ca.set_version(2).unwrap();
        ca.set_subject_name(&name("ngmedia test CA")).unwrap();
        ca.set_issuer_name(&name("ngmedia test CA")).unwrap();
        ca.set_pubkey(&ca_key).unwrap();
        ca.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        ca.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let ca = ca.build();
        let mut leaf = X509::builder().unwrap();
        leaf.set_version(2).unwrap();
        leaf.set_subject_name(&name("127.0.0.1")).unwrap();
        leaf.set_issuer_name(ca.subject_name()).unwrap();
        leaf.set_pubkey(&leaf_key).unwrap();
        leaf.set_serial_number(
            &openssl::bn::BigNum::from_u32(2)
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
        leaf.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        leaf.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&leaf.x509v3_context(Some(&ca), None))
            .unwrap();
        leaf.append_extension(san).unwrap();
        leaf.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let leaf = leaf.build();
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&pki.ca, ca.to_pem().unwrap()).unwrap();
        std::fs::write(&pki.cert, leaf.to_pem().unwrap()).unwrap();
        std::fs::write(&pki.key, leaf_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        pki
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a broker started later).
pub fn free_port() -> u16 {
    crate::daemon::free_tcp_port()
}

impl Broker {
    /// Start a broker that takes anonymous clients, on a free port.
    pub fn start() -> Broker {
        Broker::start_on(free_port(), None)
    }

    /// Start a broker on `port`, requiring `credentials` when given, and wait until it
    /// accepts connections.
    pub fn start_on(port: u16, credentials: Option<(&str, &str)>) -> Broker {
        Broker::start_with(port, credentials, false)
    }

    /// Start a broker that speaks TLS only and wants a client certificate signed by the CA
    /// of [`Broker::pki`].
    pub fn start_tls() -> Broker {
        Broker::start_with(free_port(), None, true)
    }

    /// The CA and certificate of a TLS broker.
    pub fn pki(&self) -> &Pki {
        self.tls.as_ref().expect("a TLS broker")
    }

    fn start_with(port: u16, credentials: Option<(&str, &str)>, tls: bool) -> Broker {
        assert!(
            Path::new(MOSQUITTO).is_file() && Path::new(MOSQUITTO_SUB).is_file(),
            "mosquitto not installed (apt-get install mosquitto mosquitto-clients)"
        );
        let dir = std::env::temp_dir().join(format!(
            "ngmedia-mqtt-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("broker folder");
        let mut broker = Broker {
            child: None,
            port,
            dir,
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            tls: None,
        };
        if tls {
            broker.tls = Some(Pki::write(&broker.dir.join("pki")));
        }
        broker.spawn();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let mut conf = format!("listener {} 127.0.0.1\npersistence false\n", self.port);
        match &self.credentials {
            Some((user, password)) => {
                let file = self.dir.join("passwords");
                let status = Command::new(MOSQUITTO_PASSWD)
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .status()
                    .expect("run mosquitto_passwd");
                assert!(status.success(), "mosquitto_passwd failed");
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if let Some(pki) = &self.tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
                pki.ca.display(),
                pki.cert.display(),
                pki.key.display()
            ));
        }
        let conf_path = self.dir.join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("broker configuration");
        let log = std::fs::File::create(self.dir.join("mosquitto.log")).expect("broker log");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let up = crate::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port))
                .ok()
                .map(|_| ())
        });
        assert!(up.is_some(), "mosquitto did not listen: {}", self.log());
    }

    /// Kill the broker (SIGKILL): every connection to it breaks.
    pub fn stop(&mut self) {
        crate::kill_child(&mut self.child);
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The broker's own log (connections, refusals).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Subscribe to `topic` (with the broker's credentials).
    pub fn subscribe(&self, topic: &str) -> Subscriber {
        let mut cmd = Command::new(MOSQUITTO_SUB);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-t",
            topic,
            "-q",
            "1",
        ]);
        if let Some((user, password)) = &self.credentials {
            cmd.args(["-u", user, "-P", password]);
        }
        if let Some(pki) = &self.tls {
            // Our certificate names 127.0.0.1 as an IP address; the CA is what is checked.
            cmd.arg("--cafile").arg(&pki.ca);
            cmd.arg("--cert").arg(&pki.cert);
            cmd.arg("--key").arg(&pki.key);
            cmd.arg("--insecure");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // Messages published before it has subscribed go nowhere: the tests look for
        // what a later round publishes.
        Subscriber { child, rx }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `mosquitto_sub` child; one message per line (ngmedia's JSON has no newlines).
pub struct Subscriber {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Subscriber {
    /// The first message within `limit` for which `pick` returns something.
    pub fn find<T>(
        &self,
        limit: Duration,
        mut pick: impl FnMut(&serde_json::Value) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.rx.recv_timeout(left).ok()?;
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a message that is not JSON ({e}): {line}"));
            if let Some(found) = pick(&value) {
                return Some(found);
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
