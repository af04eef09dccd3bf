//! This host's GPUs through NVML. `nvml-wrapper` loads `libnvidia-ml.so.1` at run time, so the
//! build needs no NVIDIA library and a host without one just has no GPU readings. Behind
//! [`GpuSource`] so everything above it is tested with fake readings.

/// One GPU's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    pub vendor: &'static str,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
}

/// Where GPU readings come from.
pub trait GpuSource: Send + Sync {
    fn read(&self) -> Result<Vec<GpuReading>, String>;
}

/// NVIDIA GPUs, through NVML.
pub struct Nvml(nvml_wrapper::Nvml);

impl Nvml {
    /// Loads the library and initialises it (once per process); why not, for the start log.
    pub fn open() -> Result<Nvml, String> {
        nvml_wrapper::Nvml::init()
            .map(Nvml)
            .map_err(|e| format!("NVML is not available ({e})"))
    }
}

impl GpuSource for Nvml {
    fn read(&self) -> Result<Vec<GpuReading>, String> {
        let count = self
            .0
            .device_count()
            .map_err(|e| format!("NVML device count: {e}"))?;
        (0..count)
            .map(|index| {
                let device = self
                    .0
                    .device_by_index(index)
                    .map_err(|e| format!("NVML GPU {index}: {e}"))?;
                let memory = device
                    .memory_info()
                    .map_err(|e| format!("NVML GPU {index} memory: {e}"))?;
                Ok(GpuReading {
                    index,
                    name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
                    vendor: "nvidia",
                    total_bytes: memory.total,
                    used_bytes: memory.used,
                    free_bytes: memory.free,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_library_is_an_error_not_a_panic() {
        // This machine has no NVIDIA library: opening says why, and nothing panics.
        match Nvml::open() {
            Ok(nvml) => assert!(nvml.read().is_ok()),
            Err(why) => assert!(why.contains("NVML is not available"), "{why}"),
        }
    }
}
