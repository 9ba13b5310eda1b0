//! Origin detection: the container this process runs in, for the DogStatsD
//! container id field (`|c:`, DogStatsD 1.2), from which the Datadog agent
//! tags what it receives with the container's tags.
//!
//! Read once a process, in the order the Datadog clients use:
//!
//! 1. `/proc/self/cgroup` (cgroup v1 and v2): the first line
//!    `hierarchy:controllers:path` whose path ends in a container id (64
//!    hex digits, a UUID, or an ECS task's `32 hex-digits`), a systemd
//!    `.scope` suffix allowed (`/system.slice/docker-<id>.scope`).
//! 2. `/proc/self/mountinfo`, where a private cgroup namespace hides the
//!    path: the rightmost `<dir>/<64 hex>/…hostname` of a line (a
//!    container runtime's per-container `hostname` file), not under
//!    containerd's `sandboxes`.
//! 3. With cgroup v2, the inode of this process's cgroup node (`in-<N>`),
//!    which the agent maps to the container.
//!
//! A handful of byte checks, so no regex engine is linked for them.

use std::path::Path;
use std::sync::OnceLock;

/// This process's container id, or `""` outside a container (or off
/// Linux). Detected on the first call.
pub fn container_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| detect(Path::new("/")).unwrap_or_default())
}

/// The container id seen from `root` (the file system root; another
/// directory holds fixtures): see the module documentation.
pub fn detect(root: &Path) -> Option<String> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let cgroup = read("proc/self/cgroup");
    if let Some(id) = cgroup.as_deref().and_then(from_cgroup) {
        return Some(id.to_string());
    }
    if let Some(id) = read("proc/self/mountinfo")
        .as_deref()
        .and_then(from_mountinfo)
    {
        return Some(id.to_string());
    }
    cgroup_inode(root, cgroup.as_deref()?, &read("proc/mounts")?)
}

/// The container id in a `/proc/self/cgroup` file, if a path ends in one.
pub fn from_cgroup(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| {
        let (hierarchy, rest) = line.split_once(':')?;
        let (_, path) = rest.split_once(':')?;
        let numbered = !hierarchy.is_empty() && hierarchy.bytes().all(|b| b.is_ascii_digit());
        if !numbered || path.is_empty() {
            return None;
        }
        id_at_end(path.strip_suffix(".scope").unwrap_or(path))
    })
}

/// The container id in a `/proc/self/mountinfo` file.
pub fn from_mountinfo(mountinfo: &str) -> Option<&str> {
    mountinfo.lines().find_map(|line| {
        // The rightmost `<dir>/<id>/…hostname` on the line.
        let (dir, id) = line
            .split_ascii_whitespace()
            .flat_map(|field| {
                let segments: Vec<&str> = field.split('/').collect();
                (1..segments.len().saturating_sub(1))
                    .filter(|&i| {
                        let rest = &field[segments[..=i].iter().map(|s| s.len() + 1).sum()..];
                        !segments[i - 1].is_empty()
                            && is_hex(segments[i].as_bytes(), 64)
                            && rest.contains("hostname")
                    })
                    .map(|i| (segments[i - 1], segments[i]))
                    .collect::<Vec<_>>()
            })
            .last()?;
        (dir != "sandboxes").then_some(id)
    })
}

/// Not on this system.
#[cfg(not(unix))]
fn cgroup_inode(_: &Path, _: &str, _: &str) -> Option<String> {
    None
}

/// `in-<inode>` of this process's cgroup v2 node, if cgroup v2 is mounted.
#[cfg(unix)]
fn cgroup_inode(root: &Path, cgroup: &str, mounts: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let mount = mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_, at, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then_some(at)
    })?;
    let node = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let path = format!(
        "{}/{}",
        mount.trim_end_matches('/'),
        node.trim_start_matches('/')
    );
    let meta = std::fs::metadata(root.join(path.trim_start_matches('/'))).ok()?;
    Some(format!("in-{}", meta.ino()))
}

/// The id `text` ends with: 64 hex digits, a UUID (`-` or `_` between its
/// groups), or an ECS task id (32 hex digits, `-`, digits).
fn id_at_end(text: &str) -> Option<&str> {
    let tail = |n: usize| text.len().checked_sub(n).and_then(|at| text.get(at..));
    if let Some(uuid) = tail(36) {
        let groups = [8, 4, 4, 4, 12];
        let mut at = 0;
        let fits = groups.iter().enumerate().all(|(i, &len)| {
            let sep_ok = i == 0 || matches!(uuid.as_bytes()[at - 1], b'-' | b'_');
            let ok = sep_ok && is_hex(&uuid.as_bytes()[at..at + len], len);
            at += len + 1;
            ok
        });
        if fits {
            return Some(uuid);
        }
    }
    if let Some(hex) = tail(64).filter(|t| is_hex(t.as_bytes(), 64)) {
        return Some(hex);
    }
    let (head, digits) = text.rsplit_once('-')?;
    let task = head.get(head.len().checked_sub(32)?..)?;
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (numeric && is_hex(task.as_bytes(), 32)).then(|| &text[text.len() - digits.len() - 33..])
}

/// `text` is `len` lowercase hex digits.
fn is_hex(text: &[u8], len: usize) -> bool {
    text.len() == len && text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860";

    #[test]
    fn cgroup_v1_docker_kubernetes_and_ecs() {
        let docker = format!(
            "12:memory:/docker/{DOCKER}\n11:cpu,cpuacct:/docker/{DOCKER}\n1:name=systemd:/docker/{DOCKER}\n"
        );
        assert_eq!(from_cgroup(&docker), Some(DOCKER));
        let kubepods = format!(
            "11:perf_event:/kubepods/besteffort/pod3d274242-8ee0-11e9-a8a6-1e68d864ef1a/{DOCKER}\n"
        );
        assert_eq!(from_cgroup(&kubepods), Some(DOCKER));
        let ecs = "9:perf_event:/ecs/haissam-ecs-classic/5a0d5ceddf6c44c1928d367a815d890f/38fac3e99302b3622be089dd41e7ccf38aff368a86cc339972075136ee2710ce\n";
        assert_eq!(
            from_cgroup(ecs),
            Some("38fac3e99302b3622be089dd41e7ccf38aff368a86cc339972075136ee2710ce")
        );
        let fargate = "1:name=systemd:/ecs/55091c13-b8cf-4801-b527-f4601742204d/432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da\n";
        assert_eq!(
            from_cgroup(fargate),
            Some("432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da")
        );
        let task = "1:name=systemd:/ecs/34dc0b5e626f2c5c4c5170e34b10e765-1234567890\n";
        assert_eq!(
            from_cgroup(task),
            Some("34dc0b5e626f2c5c4c5170e34b10e765-1234567890")
        );
        let pcf =
            "1:name=systemd:/system.slice/garden.service/garden/6f265890-5165-7fab-6b52-18d1\n";
        assert_eq!(from_cgroup(pcf), None);
        let uuid = "1:name=systemd:/kubepods/pod/34dc0b5e-626f-2c5c-4c51-70e34b10e765\n";
        assert_eq!(
            from_cgroup(uuid),
            Some("34dc0b5e-626f-2c5c-4c51-70e34b10e765")
        );
    }

    #[test]
    fn cgroup_v2_scopes_and_hosts() {
        let v2 = format!("0::/system.slice/docker-{DOCKER}.scope\n");
        assert_eq!(from_cgroup(&v2), Some(DOCKER));
        let containerd = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2c48913c_b29f_11e7_9350_020968147796.slice/cri-containerd-{DOCKER}.scope\n"
        );
        assert_eq!(from_cgroup(&containerd), Some(DOCKER));
        // A host process, a private namespace's root, garbage: no id.
        for none in [
            "0::/user.slice/user-1000.slice/session-2.scope\n",
            "0::/\n",
            "",
            "not a cgroup file",
            "x:memory:/docker/3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860",
            "1:memory:/é/ü3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f86986",
        ] {
            assert_eq!(from_cgroup(none), None, "{none}");
        }
    }

    #[test]
    fn mountinfo_fallback() {
        let docker = format!(
            "608 554 0:93 / / rw,relatime master:223 - overlay overlay rw\n\
             665 608 254:1 /var/lib/docker/containers/{DOCKER}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n\
             666 608 254:1 /var/lib/docker/containers/{DOCKER}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(from_mountinfo(&docker), Some(DOCKER));
        let sandbox = format!(
            "1 2 0:3 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/{DOCKER}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(from_mountinfo(&sandbox), None);
        let containerd = format!(
            "{sandbox}1 2 0:3 /var/lib/containerd/io.containerd.grpc.v1.cri/containers/{DOCKER}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(from_mountinfo(&containerd), Some(DOCKER));
        assert_eq!(from_mountinfo("1 2 0:3 / / rw - ext4 /dev/vda1 rw\n"), None);
    }

    #[cfg(unix)]
    #[test]
    fn detection_from_fixture_files_in_order() {
        let root = std::env::temp_dir().join(format!("stats-origin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        let write = |path: &str, text: &str| std::fs::write(root.join(path), text).unwrap();
        // Nothing readable: no id.
        assert_eq!(detect(&root), None);
        // A private cgroup namespace: the cgroup file says `0::/`, the
        // mountinfo file names the container.
        write("proc/self/cgroup", "0::/\n");
        write(
            "proc/self/mountinfo",
            &format!(
                "1 2 0:3 /var/lib/docker/containers/{DOCKER}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
            ),
        );
        assert_eq!(detect(&root).as_deref(), Some(DOCKER));
        // Neither names it: the cgroup v2 node's inode.
        write(
            "proc/self/mountinfo",
            "1 2 0:3 / / rw - ext4 /dev/vda1 rw\n",
        );
        write("proc/self/cgroup", "0::/app.slice/app.service\n");
        let mount = root.join("sys/fs/cgroup");
        std::fs::create_dir_all(mount.join("app.slice/app.service")).unwrap();
        write(
            "proc/mounts",
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n",
        );
        let inode = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(mount.join("app.slice/app.service"))
                .unwrap()
                .ino()
        };
        assert_eq!(detect(&root), Some(format!("in-{inode}")));
        // cgroup v1 only: no inode.
        write(
            "proc/mounts",
            "cgroup /sys/fs/cgroup/memory cgroup rw 0 0\n",
        );
        assert_eq!(detect(&root), None);
        // The cgroup file wins when it names the container.
        write(
            "proc/self/cgroup",
            &format!("0::/system.slice/docker-{DOCKER}.scope\n"),
        );
        assert_eq!(detect(&root).as_deref(), Some(DOCKER));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
