//! The model in the coordinator: Codis' paths and JSON (`/codis3/<product>/slots/slot-NNNN`,
//! `group/group-NNNN`, `proxy/proxy-<token>`, 4-space indented), read whole at start and written
//! one record at a time, always through the handle fenced by the dashboard's lock.

use coordinator::{AnyCoordinator, Coordinator};
use model::{Group, GroupId, Proxy, SlotMapping};
use net::Env;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DashboardError, Result};
use crate::model::Model;

/// A product's records.
#[derive(Clone, Debug)]
pub struct Store<E> {
    coordinator: AnyCoordinator<E>,
    product: model::ProductName,
}

fn decode<T: DeserializeOwned>(path: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value)
        .map_err(|error| DashboardError::Corrupt { path: path.to_string(), reason: error.to_string() })
}

fn encode<T: Serialize>(path: &str, value: &T) -> Result<Vec<u8>> {
    model::json::encode(value)
        .map_err(|error| DashboardError::Corrupt { path: path.to_string(), reason: error.to_string() })
}

impl<E: Env> Store<E> {
    /// The records of `product` in `coordinator` (fenced by the dashboard's lock, in use).
    pub fn new(coordinator: AnyCoordinator<E>, product: model::ProductName) -> Store<E> {
        Store { coordinator, product }
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &AnyCoordinator<E> {
        &self.coordinator
    }

    /// The product.
    pub fn product(&self) -> &model::ProductName {
        &self.product
    }

    /// Everything stored; slots with no record are offline.
    pub async fn load(&self) -> Result<Model> {
        let mut model = Model::empty();
        for (path, record) in self.coordinator.read_dir(&self.product.slots_dir()).await? {
            let slot: SlotMapping = decode(&path, &record.value)?;
            if path != self.product.slot_path(slot.id) {
                return Err(DashboardError::Corrupt { path, reason: format!("holds slot {}", slot.id.index()) });
            }
            let index = slot.id.index();
            model.slots[index] = slot;
        }
        for (path, record) in self.coordinator.read_dir(&self.product.groups_dir()).await? {
            let group: Group = decode(&path, &record.value)?;
            model.groups.insert(group.id, group);
        }
        for (path, record) in self.coordinator.read_dir(&self.product.proxies_dir()).await? {
            let proxy: Proxy = decode(&path, &record.value)?;
            model.proxies.insert(proxy.token.clone(), proxy);
        }
        Ok(model)
    }

    /// Stores a slot's mapping.
    pub async fn save_slot(&self, slot: &SlotMapping) -> Result<()> {
        let path = self.product.slot_path(slot.id);
        self.coordinator.update(&path, &encode(&path, slot)?).await?;
        Ok(())
    }

    /// Stores a group.
    pub async fn save_group(&self, group: &Group) -> Result<()> {
        let path = self.product.group_path(group.id);
        self.coordinator.update(&path, &encode(&path, group)?).await?;
        Ok(())
    }

    /// Removes a group.
    pub async fn delete_group(&self, group: GroupId) -> Result<()> {
        self.coordinator.delete(&self.product.group_path(group)).await?;
        Ok(())
    }

    /// Stores a proxy.
    pub async fn save_proxy(&self, proxy: &Proxy) -> Result<()> {
        let path = self.product.proxy_path(&proxy.token);
        self.coordinator.update(&path, &encode(&path, proxy)?).await?;
        Ok(())
    }

    /// Removes a proxy.
    pub async fn delete_proxy(&self, token: &str) -> Result<()> {
        self.coordinator.delete(&self.product.proxy_path(token)).await?;
        Ok(())
    }
}
