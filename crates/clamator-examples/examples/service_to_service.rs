//! A service calling another service: `orders.place` reserves stock with `inventory.reserve`
//! from inside its handler, through an ordinary clamator client. The inventory's own errors
//! reach the caller unchanged (a nested `RpcError` is sent verbatim), and the caller's time
//! budget travels along (`clamator::remaining()`).
//!
//! ```text
//! cargo run --example service_to_service                  # in-process bus
//! cargo run --example service_to_service -- --redis [URL] # Redis: two services, one server each
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::{CallError, RpcClient, RpcError};
use clamator_examples::{Args, Transport};

/// Stock to take.
#[clamator::model]
#[derive(Debug, Clone)]
pub struct Reserve {
    /// Stock keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// What is left after a reservation.
#[clamator::model]
#[derive(Debug)]
pub struct Reserved {
    /// Units left of that SKU.
    pub left: u32,
}

/// The stock of a shop.
#[clamator::contract(service = "inventory")]
pub trait Inventory {
    /// Takes `quantity` units of `sku`; error `-32010` when there are not enough.
    async fn reserve(&self, params: Reserve) -> Result<Reserved, RpcError>;
}

/// An order.
#[clamator::model]
#[derive(Debug)]
pub struct Placed {
    /// The order number.
    pub order: u64,
    /// Units of the SKU left in stock.
    pub left: u32,
    /// Milliseconds of the caller's budget the inventory call had left.
    pub budget_left_ms: Option<u64>,
}

/// Orders, which reserve stock in the inventory service.
#[clamator::contract(service = "orders")]
pub trait Orders {
    /// Places an order for `quantity` units of `sku`.
    async fn place(&self, params: Reserve) -> Result<Placed, CallError>;
}

struct Stock(Mutex<HashMap<String, u32>>);

impl Inventory for Stock {
    async fn reserve(&self, p: Reserve) -> Result<Reserved, RpcError> {
        let mut stock = self.0.lock().unwrap();
        let have = stock.get(&p.sku).copied().unwrap_or(0);
        if have < p.quantity {
            return Err(RpcError::new(-32010, "out of stock").with_data(
                clamator::serde_json::json!({"sku": p.sku, "have": have, "want": p.quantity}),
            ));
        }
        stock.insert(p.sku, have - p.quantity);
        Ok(Reserved {
            left: have - p.quantity,
        })
    }
}

/// The orders service holds a client of the inventory service (any transport).
struct Shop<C> {
    inventory: InventoryClient<C>,
    next: std::sync::atomic::AtomicU64,
}

impl<C: RpcClient> Orders for Shop<C> {
    async fn place(&self, p: Reserve) -> Result<Placed, CallError> {
        // The handler runs within the caller's deadline; pass what is left on.
        let budget = clamator::remaining();
        let inventory = match budget {
            Some(left) => self.inventory.with_timeout(left),
            None => self.inventory.clone(),
        };
        let reserved = inventory.reserve(p).await?; // an RpcError from inventory passes through
        Ok(Placed {
            order: self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            left: reserved.left,
            budget_left_ms: budget.map(|d| d.as_millis() as u64),
        })
    }
}

fn stock() -> Stock {
    Stock(Mutex::new(HashMap::from([("tea".to_owned(), 3)])))
}

async fn shop<C: RpcClient>(client: C) -> Result<(), Box<dyn std::error::Error>> {
    let orders = OrdersClient::new(client).with_timeout(Duration::from_secs(5));
    for quantity in [2, 2] {
        let order = Reserve {
            sku: "tea".into(),
            quantity,
        };
        match orders.place(order).await {
            Ok(placed) => println!(
                "order {} placed: {quantity} tea, {} left (inventory had {:?} ms of the 5 s budget)",
                placed.order, placed.left, placed.budget_left_ms
            ),
            Err(CallError::Rpc(e)) => println!(
                "order refused by inventory: {} {} {}",
                e.code, e.message, e.data
            ),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    clamator_examples::init_logs();
    let args = Args::parse();
    match &args.transport {
        Transport::Memory => {
            println!("transport: in-process bus");
            let bus = MemoryBus::new();
            let inventory = MemoryRpcServer::builder(&bus)
                .service(InventoryServer::new(stock()))
                .build()?;
            inventory.start().await?;
            // The orders service calls inventory through its own client on the same bus.
            let to_inventory = MemoryRpcClient::new(&bus);
            to_inventory.start().await?;
            let orders = MemoryRpcServer::builder(&bus)
                .service(OrdersServer::new(Shop {
                    inventory: InventoryClient::new(to_inventory.clone()),
                    next: 0.into(),
                }))
                .build()?;
            orders.start().await?;
            let client = MemoryRpcClient::new(&bus);
            client.start().await?;
            shop(client.clone()).await?;
            client.stop().await;
            orders.stop().await;
            to_inventory.stop().await;
            inventory.stop().await;
        }
        Transport::Redis(url) => {
            let prefix = clamator_examples::run_prefix("service-to-service");
            println!(
                "transport: redis {} (prefix {prefix})",
                clamator::redis::redact_url(url)
            );
            // In production these are separate processes, each scaled on its own.
            let inventory = RedisRpcServer::builder()
                .key_prefix(&prefix)
                .url(url)
                .service(InventoryServer::new(stock()))
                .build()?;
            inventory.start().await?;
            let to_inventory = RedisRpcClient::builder()
                .key_prefix(&prefix)
                .url(url)
                .build()?;
            to_inventory.start().await?;
            let orders = RedisRpcServer::builder()
                .key_prefix(&prefix)
                .url(url)
                .service(OrdersServer::new(Shop {
                    inventory: InventoryClient::new(to_inventory.clone()),
                    next: 0.into(),
                }))
                .build()?;
            orders.start().await?;
            let client = RedisRpcClient::builder()
                .key_prefix(&prefix)
                .url(url)
                .build()?;
            client.start().await?;
            shop(client.clone()).await?;
            client.stop().await;
            orders.stop().await;
            to_inventory.stop().await;
            inventory.stop().await;
            clamator_examples::cleanup(url, &prefix).await;
        }
    }
    Ok(())
}
