//! A real registry (Debian's `docker-registry`, htpasswd with bcrypt, plain http on loopback)
//! and a tiny OCI image layout built by hand, so skopeo has something to push and pull.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{TempDir, free_port, require_tool, text};

/// A `docker-registry` process with one htpasswd user, stopped when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    _dir: TempDir,
}

impl Registry {
    pub async fn start(username: &str, password: &str) -> Self {
        let registry = require_tool("docker-registry", "docker-registry");
        let htpasswd = require_tool("htpasswd", "apache2-utils");
        let dir = TempDir::new("berth-registry");
        let output = Command::new(htpasswd)
            .args(["-Bbn", username, password])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "htpasswd: {}",
            text(&output.stderr)
        );
        std::fs::write(dir.path().join("htpasswd"), &output.stdout).unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(registry)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut running = Self {
            host,
            child,
            _dir: dir,
        };
        running.wait_ready().await;
        running
    }

    /// Until `/v2/` answers its challenge (401), at most 30 s.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/v2/", self.host);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(self._dir.path().join("registry.log"))
                    .unwrap_or_default();
                panic!("docker-registry exited ({status}): {log}");
            }
            if let Ok(response) = reqwest::get(&url).await
                && response.status() == 401
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The skopeo binary and a policy that accepts any image (the host's may be stricter).
pub struct Skopeo {
    binary: PathBuf,
    policy: PathBuf,
    home: PathBuf,
}

impl Skopeo {
    pub fn new(dir: &Path) -> Self {
        let binary = require_tool("skopeo", "skopeo");
        let policy = dir.join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self {
            binary,
            policy,
            home,
        }
    }

    /// `skopeo --policy ... copy ...`, with a HOME of its own so no credentials of the
    /// developer's are found.
    pub fn copy(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.home)
            .env_remove("REGISTRY_AUTH_FILE")
            .arg("--policy")
            .arg(&self.policy)
            .arg("copy")
            .args(args);
        command
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// One regular file in an uncompressed (ustar) tar: a layer needs nothing more.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&byte| u32::from(byte)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Writes an OCI image layout at `dir` holding one image tagged `tag`: one layer with one file.
pub fn write_oci_layout(dir: &Path, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write_blob = |bytes: &[u8]| -> (String, usize) {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
        (digest, bytes.len())
    };
    let layer = tar_with_one_file("hello.txt", b"pulled with Berth's credentials\n");
    let (layer_digest, layer_size) = write_blob(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = write_blob(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = write_blob(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}
