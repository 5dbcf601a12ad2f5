//! How a model instance is built: capabilities, identity, port, fabric, rates and faults.

use std::time::Duration;

use rhca_hw::regs::{self, Caps};

/// A remote node of the simulated fabric (a channel adapter behind the switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNode {
    /// Its LID.
    pub lid: u16,
    /// Its node GUID (the port GUID is this plus one).
    pub node_guid: u64,
    /// Its `NodeDescription`.
    pub description: String,
}

/// The fabric behind the port: the local HCA on port 1 of a switch, remote CAs on switch ports
/// 2, 3, …, and a subnet manager at `sm_lid` (the first remote node by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricConfig {
    /// The switch's LID (0: no switch; the port is then a point-to-point link to nothing).
    pub switch_lid: u16,
    /// The switch's node GUID.
    pub switch_guid: u64,
    /// Remote channel adapters, on switch ports 2.. in order.
    pub remotes: Vec<RemoteNode>,
    /// The subnet manager's LID (`PortInfo.MasterSMLID`, source of unsolicited SMPs).
    pub sm_lid: u16,
    /// Unsolicited `SubnSet(PortInfo)` SMPs per second from the subnet manager (0: none).
    pub unsolicited_per_sec: u32,
    /// QP1 sends to the local LID come back to the local QP1 (raw throughput tests).
    pub loopback: bool,
}

impl Default for FabricConfig {
    fn default() -> Self {
        Self {
            switch_lid: 2,
            switch_guid: 0x0002_c902_0000_0100,
            remotes: (0..3)
                .map(|i| RemoteNode {
                    lid: 3 + i,
                    node_guid: 0x0002_c903_0000_0200 + u64::from(i) * 0x10,
                    description: format!("rhca-sim remote {}", i + 1),
                })
                .collect(),
            sm_lid: 3,
            unsolicited_per_sec: 0,
            loopback: false,
        }
    }
}

/// The model's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Capabilities reported in `CAP0`..`CAP2` (validated at construction).
    pub caps: Caps,
    /// Node GUID (`NODE_GUID_*`, `NodeInfo`); the port GUID is this plus one.
    pub node_guid: u64,
    /// The local port's LID.
    pub lid: u16,
    /// `NodeDescription` of the local node.
    pub description: String,
    /// The fabric.
    pub fabric: FabricConfig,
    /// How long a reset takes before `STATUS.READY` (the datasheet allows up to 10 ms).
    pub reset_time: Duration,
    /// Stream bytes per second per engine (`None`: as fast as possible).
    pub stream_rate: Option<u64>,
    /// Inbound packets the device buffers while no receive WQE is posted; more are dropped.
    pub receive_buffering: usize,
    /// Benchmark data: capture writes the same bytes for every segment (the pattern of sequence
    /// 0, generated once) and playback is never verified, so that the engine's cost is the data
    /// movement alone, as a real device's is (`rhca-lab bench`). Verification is off then.
    pub bench_data: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            caps: Caps::decode(regs::CAP0.reset, regs::CAP1.reset, regs::CAP2.reset)
                .expect("documented reset values"),
            node_guid: 0x0002_c903_0000_0001,
            lid: 1,
            description: "rhca-sim HCA".into(),
            fabric: FabricConfig::default(),
            reset_time: Duration::from_micros(50),
            stream_rate: None,
            receive_buffering: 64,
            bench_data: false,
        }
    }
}

impl ModelConfig {
    /// The default device driving only 32 address bits (for the `bounce` profile).
    #[must_use]
    pub fn dma_32bit() -> Self {
        let mut c = Self::default();
        c.caps.dma_width = 32;
        c
    }
}

/// What the device has done, for tests and the lab.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// WQEs fetched and validated.
    pub wqes_fetched: u64,
    /// CQEs written.
    pub cqes_written: u64,
    /// MADs sent onto the fabric.
    pub sends: u64,
    /// MADs placed in receive buffers.
    pub receives: u64,
    /// Inbound MADs dropped (no receive WQE and device buffering full, or undeliverable).
    pub rx_drops: u64,
    /// MADs the fabric's agents answered.
    pub mads_answered: u64,
    /// Stream segments completed.
    pub segments: u64,
    /// Stream bytes moved.
    pub bytes_streamed: u64,
    /// Errors latched (including ones not latched because one was pending).
    pub errors: u64,
    /// Interrupt messages or line assertions signalled.
    pub interrupts: u64,
    /// Faults injected that have taken effect.
    pub faults_injected: u64,
}

/// A fault to inject (`RhcaDevice::inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next send's gather fails as a DMA read error (`DmaError` completion).
    DmaErrorNextSend,
    /// The next receive's scatter fails as a DMA write error (`DmaError` completion).
    DmaErrorNextReceive,
    /// CQ `n` overflows at its next CQE.
    CqOverflow(u32),
    /// Work queue `n` stops making progress (until `UnstickQueue`).
    StuckQueue(u32),
    /// Work queue `n` makes progress again.
    UnstickQueue(u32),
    /// The next CQE carries a WQE index beyond its ring.
    HostileCqeIndex,
    /// The next CQE claims more bytes than the posted buffer holds.
    HostileCqeLength,
    /// The next CQE carries an undefined opcode.
    HostileCqeOpcode,
    /// The next CQE names a queue pair the device does not have.
    HostileCqeQpn,
    /// `n` interrupt messages with no cause behind them.
    InterruptStorm(u32),
    /// The device leaves the bus now.
    SurpriseRemoval,
    /// The device leaves the bus after `n` more WQEs.
    RemoveAfterWqes(u64),
    /// Every service round takes this much longer.
    Slow(Duration),
    /// Stream engine `n` gets a DMA error at its next segment.
    StreamDmaError(u32),
}

/// Faults drawn from a seeded generator, so that a failing run can be replayed exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RandomFaults {
    /// The generator's seed.
    pub seed: u64,
    /// Per million sends and receives: the gather or scatter fails as a DMA error.
    pub dma_error_ppm: u32,
    /// Per million CQEs: the CQE carries an out-of-range WQE index.
    pub hostile_cqe_ppm: u32,
}
