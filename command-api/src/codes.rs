//! Generated codes: sequence numbers leased in blocks (one registry round trip per block, not per
//! create), turned into codes by the domain's keyed permutation.

use std::ops::Range;
use std::sync::Arc;

use kurz_domain::code_generator::GenerateError;
use kurz_domain::{Code, CodeGenerator};
use kurz_ports::{CodeRegistry, InfraError};
use tokio::sync::Mutex;

#[derive(Debug)]
pub struct CodeAllocator {
    generator: CodeGenerator,
    registry: Arc<dyn CodeRegistry>,
    block: Mutex<Range<u64>>,
    block_size: u64,
}

impl CodeAllocator {
    pub fn new(generator: CodeGenerator, registry: Arc<dyn CodeRegistry>, block_size: u64) -> Self {
        Self { generator, registry, block: Mutex::new(0..0), block_size: block_size.max(1) }
    }

    /// A code never handed out before by any allocator. Not claimed: a custom alias may hold it.
    pub async fn next_code(&self) -> Result<Code, InfraError> {
        loop {
            let sequence = self.next_sequence().await?;
            match self.generator.code_for(sequence) {
                Ok(code) => return Ok(code),
                Err(GenerateError::Reserved(_)) => {}
                Err(exhausted @ GenerateError::Exhausted(_)) => {
                    return Err(InfraError::new("generating a code", exhausted));
                }
            }
        }
    }

    async fn next_sequence(&self) -> Result<u64, InfraError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            *block = self.registry.lease_sequences(self.block_size).await?;
        }
        let sequence = block.start;
        block.start += 1;
        Ok(sequence)
    }
}
