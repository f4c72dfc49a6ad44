//! The demo's fixed world: ten identities and a few hundred collections owned by the first four.
//!
//! Everything here is derived from constants, so ids and names are the same in every run and tests can name them.

use std::sync::OnceLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Identity;

/// The identity provider every demo identity comes from.
pub(crate) const IDENTITY_PROVIDER: &str = "6c2f1f7e-0d3a-4b8e-9f41-5a7c2e9d1b30";
pub(crate) const IDENTITY_PROVIDER_DISPLAY_NAME: &str = "Demo Identity Provider";

/// The demo identities; the consent page offers them in this order and checks the first.
pub(crate) static IDENTITIES: &[Identity] = &[
    Identity {
        sub: "3b9c4a7e-6f21-4d0b-8a5e-1c2f7e9d0a11",
        username: "ada@demo.globus.org",
        name: "Ada Lovelace",
        email: "ada@demo.globus.org",
        organization: "Demo University",
    },
    Identity {
        sub: "7e2d1f90-48ac-4b6e-b3d1-95c0a4e8f622",
        username: "grace@demo.globus.org",
        name: "Grace Hopper",
        email: "grace@demo.globus.org",
        organization: "Demo Naval Research Laboratory",
    },
    Identity {
        sub: "c41a8e37-0d5b-4f9e-a26c-8b7f3e1d5a33",
        username: "alan@demo.globus.org",
        name: "Alan Turing",
        email: "alan@demo.globus.org",
        organization: "Demo Institute for Computing",
    },
    Identity {
        sub: "e95f2b6c-71d8-4a03-9e4f-3a6c0b8d2e44",
        username: "katherine@demo.globus.org",
        name: "Katherine Johnson",
        email: "katherine@demo.globus.org",
        organization: "Demo Space Flight Center",
    },
    // Two more people to sign in as, owning no collections (each end-to-end spec links identities of its own).
    Identity {
        sub: "5d7a9c21-3e8f-4b60-a1d4-6f2b8e0c9a55",
        username: "mary@demo.globus.org",
        name: "Mary Jackson",
        email: "mary@demo.globus.org",
        organization: "Demo Aeronautical Laboratory",
    },
    Identity {
        sub: "a83e6d05-9b2c-4f71-8e3a-2c5d7f1b0e66",
        username: "dorothy@demo.globus.org",
        name: "Dorothy Vaughan",
        email: "dorothy@demo.globus.org",
        organization: "Demo Computing Section",
    },
    // Two more, also owning nothing, for the example platform's end-to-end journey (its two projects).
    Identity {
        sub: "b2f4c8e1-5a3d-4e7f-9c60-7d1e3f5a9b77",
        username: "hedy@demo.globus.org",
        name: "Hedy Lamarr",
        email: "hedy@demo.globus.org",
        organization: "Demo Radio Laboratory",
    },
    Identity {
        sub: "f6a1d3b9-2c7e-4f58-8b04-9e2a6c4d1f88",
        username: "radia@demo.globus.org",
        name: "Radia Perlman",
        email: "radia@demo.globus.org",
        organization: "Demo Networking Group",
    },
    // Two more, owning nothing, for the file manager's end-to-end test (its two projects); they use the public
    // collections.
    Identity {
        sub: "0c7e5a29-8d14-4b3f-a6e2-4f9b1d7c3e99",
        username: "rosalind@demo.globus.org",
        name: "Rosalind Franklin",
        email: "rosalind@demo.globus.org",
        organization: "Demo Crystallography Unit",
    },
    Identity {
        sub: "9a4d2e6b-1f83-4c57-b0a9-6e3c8f2d5b10",
        username: "lise@demo.globus.org",
        name: "Lise Meitner",
        email: "lise@demo.globus.org",
        organization: "Demo Nuclear Physics Group",
    },
];

/// The identities that own the collections: the first four, so the collections stayed as they were when the last
/// two were added.
fn owners() -> &'static [Identity] {
    &IDENTITIES[..4]
}

pub(crate) fn identity(sub: &str) -> Option<&'static Identity> {
    IDENTITIES.iter().find(|identity| identity.sub == sub)
}

fn first_name(identity: &Identity) -> &'static str {
    identity.name.split(' ').next().unwrap_or(identity.name)
}

/// How many collections the demo has: more than three pages of 100, so paging is exercised.
const ENDPOINT_COUNT: usize = 320;

/// One collection. The Transfer document is built from it on demand ([`Endpoint::document`]).
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub owner: &'static Identity,
    pub organization: &'static str,
    pub entity_type: &'static str,
    pub hostname: String,
    pub public: bool,
    /// Identities with a role on the collection other than owner (`administered-by-me`).
    pub administrators: Vec<&'static Identity>,
    /// Identities the collection is shared with (`shared-with-me`).
    pub shared_with: Vec<&'static Identity>,
    /// Identities that used it recently (`recently-used`).
    pub recently_used_by: Vec<&'static Identity>,
    /// False for a Globus Connect Personal collection whose computer is off: listing it fails with
    /// `GCDisconnected`. Every owner has laptops of both kinds (Ada's Laptop 016 is on, 080 is off).
    pub connected: bool,
}

impl Endpoint {
    /// Whether `who` may see it in an `all` search: public, or they have a relation to it.
    pub fn visible_to(&self, who: &str) -> bool {
        self.public || self.owned_by(who) || self.administered_by(who) || self.shared_with(who)
    }

    pub fn owned_by(&self, who: &str) -> bool {
        self.owner.sub == who
    }

    pub fn administered_by(&self, who: &str) -> bool {
        self.owned_by(who) || self.administrators.iter().any(|identity| identity.sub == who)
    }

    pub fn shared_with(&self, who: &str) -> bool {
        self.shared_with.iter().any(|identity| identity.sub == who)
    }

    pub fn recently_used_by(&self, who: &str) -> bool {
        self.recently_used_by.iter().any(|identity| identity.sub == who)
    }

    /// The document `GET /v0.10/endpoint/{id}` returns, with the keys of `transfer.get_endpoint.json` plus the owner
    /// fields that real documents carry.
    pub fn document(&self) -> Value {
        let is_personal = self.entity_type == "GCP_mapped_collection";
        // Two halves: one `json!` of this size exceeds the macro recursion limit.
        let mut document = json!({
            "DATA_TYPE": "endpoint",
            "id": self.id,
            "display_name": self.display_name,
            "organization": self.organization,
            "username": self.owner.username,
            "owner_id": self.owner.sub,
            "owner_string": self.owner.username,
            "description": self.description,
            "entity_type": self.entity_type,
            "public": self.public,
            "french_english_bilingual": false,
            "is_globus_connect": is_personal,
            "globus_connect_setup_key": null,
            "gcp_connected": if is_personal { json!(self.connected) } else { Value::Null },
            "gcp_paused": if is_personal { json!(false) } else { Value::Null },
        });
        let rest = json!({
            "s3_url": null,
            "s3_owner_activated": false,
            "host_endpoint_id": null,
            "host_path": null,
            "disable_verify": false,
            "disable_anonymous_writes": false,
            "force_verify": false,
            "force_encryption": false,
            "mfa_required": false,
            "myproxy_server": null,
            "myproxy_dn": null,
            "non_functional": false,
            "non_functional_endpoint_display_name": null,
            "non_functional_endpoint_id": null,
            "oauth_server": null,
            "default_directory": "/~/",
            "activated": true,
            "expires_in": -1,
            "expire_time": null,
            "shareable": !is_personal,
            "acl_available": true,
            "acl_editable": false,
            "in_use": false,
            "DATA": [{
                "DATA_TYPE": "server",
                "hostname": self.hostname,
                "uri": format!("gsiftp://{}:2811", self.hostname),
                "port": 2811,
                "scheme": "gsiftp",
                "id": null,
                "subject": null,
            }],
        });
        if let (Some(document), Value::Object(rest)) = (document.as_object_mut(), rest) {
            document.extend(rest);
        }
        document
    }
}

/// All collections, in a fixed order.
pub(crate) fn endpoints() -> &'static [Endpoint] {
    static ENDPOINTS: OnceLock<Vec<Endpoint>> = OnceLock::new();
    ENDPOINTS.get_or_init(|| (0..ENDPOINT_COUNT).map(build_endpoint).collect())
}

pub(crate) fn endpoint(id: &str) -> Option<&'static Endpoint> {
    let id = Uuid::parse_str(id).ok()?.to_string();
    endpoints().iter().find(|endpoint| endpoint.id == id)
}

/// A UUID that looks random but is the same in every run: the hash of a fixed name.
fn stable_uuid(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

fn build_endpoint(index: usize) -> Endpoint {
    let owners = owners();
    let owner_index = index % owners.len();
    let owner = &owners[owner_index];
    let other = |offset: usize| &owners[(owner_index + offset) % owners.len()];
    let first = first_name(owner);
    let (display_name, description, entity_type, organization) = match (index / owners.len()) % 8 {
        0 => (
            format!("{first}'s Lab Cluster {index:03}"),
            format!("Project and scratch storage on the cluster in {first}'s lab."),
            "GCSv5_mapped_collection",
            owner.organization,
        ),
        1 => (
            format!("Demo University Archive {index:03}"),
            "Tape-backed long-term archive run by Demo University Research Computing.".to_owned(),
            "GCSv5_mapped_collection",
            "Demo University",
        ),
        2 => (
            format!("{first}'s Laptop {index:03}"),
            format!("Globus Connect Personal on {first}'s laptop."),
            "GCP_mapped_collection",
            owner.organization,
        ),
        3 => (
            format!("{} Data Portal {index:03}", owner.organization),
            format!("Published datasets from {}.", owner.organization),
            "GCSv5_guest_collection",
            owner.organization,
        ),
        4 => (
            format!("Demo Observatory Sky Survey {index:03}"),
            "Nightly images and catalogues from the demo sky survey.".to_owned(),
            "GCSv5_guest_collection",
            "Demo Observatory",
        ),
        5 => (
            format!("{first}'s Shared Results {index:03}"),
            format!("Results {first} shares with collaborators."),
            "GCSv5_guest_collection",
            owner.organization,
        ),
        6 => (
            format!("Demo Genomics Core {index:03}"),
            "Sequencing runs from the demo genomics core facility.".to_owned(),
            "GCSv5_mapped_collection",
            "Demo Genomics Core",
        ),
        _ => (
            format!("Demo Climate Model Output {index:03}"),
            "Output of the demo regional climate model ensemble.".to_owned(),
            "GCSv5_guest_collection",
            "Demo Climate Centre",
        ),
    };
    let is_personal = entity_type == "GCP_mapped_collection";
    let mut shared_with = Vec::new();
    if index.is_multiple_of(5) || display_name.contains("Shared Results") {
        shared_with.push(other(1));
    }
    if index.is_multiple_of(11) {
        shared_with.push(other(2));
    }
    let mut recently_used_by = Vec::new();
    if index.is_multiple_of(9) {
        recently_used_by.push(owner);
    }
    if index.is_multiple_of(13) {
        recently_used_by.push(other(3));
    }
    let administrators = if index.is_multiple_of(7) {
        vec![other(1)]
    } else {
        Vec::new()
    };
    let host = display_name
        .to_ascii_lowercase()
        .replace(['\'', ' '], "-")
        .replace("--", "-");
    Endpoint {
        id: stable_uuid(&format!("onbehalf demo collection {index}")),
        display_name,
        description,
        owner,
        organization,
        entity_type,
        hostname: format!("{host}.demo.globus.org"),
        public: !is_personal && !index.is_multiple_of(3),
        administrators,
        shared_with,
        recently_used_by,
        connected: !(is_personal && (index / 64) % 2 == 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unique_and_stable() {
        let all = endpoints();
        assert_eq!(all.len(), ENDPOINT_COUNT);
        let ids: std::collections::BTreeSet<_> = all.iter().map(|e| e.id.as_str()).collect();
        let names: std::collections::BTreeSet<_> = all.iter().map(|e| e.display_name.as_str()).collect();
        assert_eq!(ids.len(), ENDPOINT_COUNT);
        assert_eq!(names.len(), ENDPOINT_COUNT);
        assert_eq!(all[0].id, stable_uuid("onbehalf demo collection 0"));
        assert_eq!(all[0].display_name, "Ada's Lab Cluster 000");
        assert!(endpoint(&all[7].id.to_uppercase()).is_some());
    }
}
