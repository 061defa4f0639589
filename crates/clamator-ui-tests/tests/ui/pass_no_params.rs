// A contract with methods without params and the error types newcomers reach for, using only
// clamator's re-exports (no serde / schemars imports).
#[clamator::model]
pub struct Count {
    pub n: u64,
}

#[clamator::contract(service = "counter")]
pub trait Counter {
    async fn get(&self) -> Result<Count, Box<dyn std::error::Error + Send + Sync>>;
    async fn io(&self) -> std::io::Result<Count>;
    async fn text(&self) -> Result<Count, String>;
    #[notification]
    async fn reset(&self);
}

fn main() {
    let _ = CounterContract::descriptor();
}
