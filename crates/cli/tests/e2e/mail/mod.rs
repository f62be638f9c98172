//! Mail by SMTP: a real server (aiosmtpd, `smtp_sink.py`) on loopback that insists on
//! STARTTLS with a certificate of a private CA and on signing in.

use crate::harness::{Cluster, http_with};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const PASSWORD: &str = "relay-Pass-8b1f2c";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A private CA and a certificate it issued for 127.0.0.1: (CA, certificate, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-keyout", "ca.key", "-out", "ca.pem"];
    ca.extend(ec);
    ca.extend(["-days", "2", "-subj", "/CN=sitesync test CA"]);
    openssl(dir, &ca);
    let mut request = vec!["req", "-keyout", "smtp.key", "-out", "smtp.csr"];
    request.extend(ec);
    request.extend(["-subj", "/CN=127.0.0.1"]);
    openssl(dir, &request);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "smtp.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "smtp.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("smtp.pem"),
        dir.join("smtp.key"),
    )
}

/// The SMTP server, killed when dropped.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sink(kept: &Path, port: u16, cert: &Path, key: &Path) -> Sink {
    std::fs::create_dir_all(kept).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mail/smtp_sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(kept)
        .arg(port.to_string())
        .args([cert, key])
        .args(["sync@acme.test", PASSWORD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (with aiosmtpd: pip install aiosmtpd)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sink = Sink(child);
    assert_eq!(
        line.trim(),
        "ready",
        "the SMTP server started (is aiosmtpd installed?)"
    );
    sink
}

fn kept(folder: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => found.extend(files_under(&path)),
            false => found.push(path),
        }
    }
    found
}

#[test]
fn mail_goes_through_an_smtp_server_over_starttls_signed_in_and_the_password_stays_sealed() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let (ca, cert, key) = certificates(&cluster.path("certificates"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let folder = cluster.path("relay");
    let _relay = sink(&folder, port, &cert, &key);
    let code = primary.auth_code.clone();
    let server = format!("127.0.0.1:{port}");
    let ca = ca.display().to_string();
    for (setting, value) in [
        ("smtp", server.as_str()),
        ("smtp-user", "sync@acme.test"),
        ("smtp-ca", ca.as_str()),
        ("mail-from", "Acme Sync <sync@acme.test>"),
    ] {
        let set = primary.cli(&["settings", "set", setting, value, "--auth-code", &code]);
        assert!(set.success(), "{}", set.describe());
    }
    let sealed = [
        "settings",
        "set",
        "smtp-password",
        "-",
        "--auth-code",
        &code,
    ];
    let set = primary.cli_input(&sealed, &format!("{PASSWORD}\n"));
    assert!(set.success(), "{}", set.describe());
    let shown = primary.cli(&["settings", "show"]);
    assert!(
        shown.stdout.contains("set (stored encrypted)"),
        "{}",
        shown.describe()
    );
    assert!(shown.stdout.contains("starttls"), "{}", shown.describe());

    let test = primary.cli(&["mail", "test", "ops@example.org"]);
    assert!(test.success(), "{}", test.describe());
    assert!(
        test.stdout
            .contains(&format!("sent through {server} (starttls)")),
        "{}",
        test.describe()
    );
    // The running portal mails through the server too, without a restart.
    let r = http_with(
        primary.addr(),
        "POST",
        "/register",
        &[FORM],
        Some(b"email=ann%40example.org&password=violet+umbrella+harbour+seventeen"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mails = kept(&folder);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(
        mails[0].contains("To: ops@example.org")
            && mails[0].contains("From: \"Acme Sync\" <sync@acme.test>"),
        "{}",
        mails[0]
    );
    assert!(
        mails[1].contains("To: ann@example.org") && mails[1].contains("/confirm/"),
        "{}",
        mails[1]
    );
    assert!(
        !primary.data.join("mail").exists(),
        "nothing went to the outbox"
    );

    // A wrong password: the server refuses, and the operator is told what to do.
    let set = primary.cli_input(&sealed, "not-the-password\n");
    assert!(set.success(), "{}", set.describe());
    let line = primary.cli(&["mail", "test", "ops@example.org"]).fails();
    assert!(
        line.contains(&server) && line.contains("sitesync mail test"),
        "{line}"
    );
    assert_eq!(kept(&folder).len(), 2, "nothing more was taken");

    // The password is nowhere in clear: not in config.toml, the database or the logs.
    for file in files_under(&primary.data)
        .into_iter()
        .chain([primary.log.clone()])
    {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [PASSWORD, "not-the-password"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the SMTP password in clear",
                file.display()
            );
        }
    }

    // Back to the outbox folder.
    let set = primary.cli(&["settings", "set", "smtp", "none", "--auth-code", &code]);
    assert!(set.success(), "{}", set.describe());
    let test = primary.cli(&["mail", "test", "ops@example.org"]);
    assert!(test.stdout.contains("written to"), "{}", test.describe());
}
