//! `rhca-vfio-user --socket PATH [options]`: serves one RHCA over vfio-user on a Unix socket.
//!
//! Point QEMU at it with `-device vfio-user-pci,socket=PATH` (QEMU 10.1 or later) or Cloud
//! Hypervisor with `--user-device socket=PATH`; `docs/test-machine.md` §11 has the whole VM.
//!
//! Options:
//! - `--fabric remotes=N,unsolicited=R,loopback`: N remote channel adapters behind the switch
//!   (0..=16, default 3), R unsolicited `SubnSet(PortInfo)` per second (default 0), loopback of
//!   QP1 sends to the local LID;
//! - `--faults dma-error-ppm=N,hostile-cqe-ppm=N,seed=S`: seeded random device faults (per
//!   million sends/receives and CQEs);
//! - `--dma-width 32|64`: the address bits the device drives (default 64).

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    match serve::main(std::env::args().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rhca-vfio-user: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("rhca-vfio-user: vfio-user is a Unix-socket protocol; run it on Linux");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod serve {
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    use rhca_model::{ModelConfig, RandomFaults, RemoteNode};
    use rhca_vfio_user::RhcaBackend;
    use vfio_user::Server;

    struct Options {
        socket: PathBuf,
        model: ModelConfig,
        faults: Option<RandomFaults>,
    }

    fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{key}={v}: not a number in range"))
    }

    fn parse(args: Vec<String>) -> Result<Options, String> {
        let mut socket = None;
        let mut model = ModelConfig::default();
        let mut faults = None;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--socket" => socket = Some(PathBuf::from(value()?)),
                "--fabric" => {
                    for item in value()?.split(',').filter(|s| !s.is_empty()) {
                        match item.split_once('=') {
                            Some(("remotes", v)) => {
                                let n: u16 = number("remotes", v)?;
                                if n > 16 {
                                    return Err("remotes: at most 16".into());
                                }
                                model.fabric.remotes = (0..n)
                                    .map(|i| RemoteNode {
                                        lid: 3 + i,
                                        node_guid: 0x0002_c903_0000_0200 + u64::from(i) * 0x10,
                                        description: format!("rhca-vfio-user remote {}", i + 1),
                                    })
                                    .collect();
                                if n == 0 {
                                    model.fabric.sm_lid = model.lid;
                                }
                            }
                            Some(("unsolicited", v)) => {
                                model.fabric.unsolicited_per_sec = number("unsolicited", v)?;
                            }
                            None if item == "loopback" => model.fabric.loopback = true,
                            _ => return Err(format!("--fabric: unknown item {item:?}")),
                        }
                    }
                }
                "--faults" => {
                    let mut f = RandomFaults::default();
                    for item in value()?.split(',').filter(|s| !s.is_empty()) {
                        match item.split_once('=') {
                            Some(("dma-error-ppm", v)) => f.dma_error_ppm = number(item, v)?,
                            Some(("hostile-cqe-ppm", v)) => f.hostile_cqe_ppm = number(item, v)?,
                            Some(("seed", v)) => f.seed = number(item, v)?,
                            _ => return Err(format!("--faults: unknown item {item:?}")),
                        }
                    }
                    faults = Some(f);
                }
                "--dma-width" => match value()?.as_str() {
                    "32" => model.caps.dma_width = 32,
                    "64" => model.caps.dma_width = 64,
                    v => return Err(format!("--dma-width {v}: 32 or 64")),
                },
                "--help" | "-h" => {
                    return Err("usage: rhca-vfio-user --socket PATH [--fabric remotes=N,unsolicited=R,loopback] [--faults dma-error-ppm=N,hostile-cqe-ppm=N,seed=S] [--dma-width 32|64]".into());
                }
                _ => return Err(format!("unknown argument {a:?} (--help)")),
            }
        }
        let socket = socket.ok_or("--socket PATH is required")?;
        Ok(Options {
            socket,
            model,
            faults,
        })
    }

    pub fn main(args: Vec<String>) -> Result<(), String> {
        let o = parse(args)?;
        if o.socket.exists() {
            // A socket nobody listens on is what a killed server leaves: take its place.
            // Anything else is someone else's file.
            let stale = std::fs::symlink_metadata(&o.socket)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                && UnixStream::connect(&o.socket).is_err();
            if !stale {
                return Err(format!(
                    "{} exists and is not a stale socket: choose another path",
                    o.socket.display()
                ));
            }
            std::fs::remove_file(&o.socket)
                .map_err(|e| format!("removing the stale socket {}: {e}", o.socket.display()))?;
        }
        let mut backend = RhcaBackend::new(o.model.clone()).map_err(|e| e.to_string())?;
        backend.device().set_random_faults(o.faults);
        let server = Server::new(
            &o.socket,
            true,
            RhcaBackend::irqs(o.model.caps.msix_vectors),
            RhcaBackend::regions(),
        )
        .map_err(|e| format!("listening on {}: {e}", o.socket.display()))?;
        eprintln!(
            "rhca-vfio-user: serving an RHCA ({}, {} MSI-X vectors, {}-bit DMA) on {}",
            rhca_hw::pci::HARDWARE_ID,
            o.model.caps.msix_vectors,
            o.model.caps.dma_width,
            o.socket.display()
        );
        loop {
            match server.run(&mut backend) {
                Ok(()) => eprintln!("rhca-vfio-user: the client disconnected"),
                Err(e) => eprintln!("rhca-vfio-user: the client's connection failed: {e}"),
            }
            backend.disconnect();
            eprintln!(
                "rhca-vfio-user: device reset; {} DMA faults and {} interrupts so far; waiting for the next client",
                backend.port().dma_faults(),
                backend.port().interrupts()
            );
        }
    }
}
