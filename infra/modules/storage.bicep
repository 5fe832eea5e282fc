// Storage: the one account that holds the service's data (blobs), catalog (tables) and background
// work (queues), and that the Functions host uses for its own state (AzureWebJobsStorage).
// Entra ID only: no shared keys, no public blob access, TLS 1.2, HTTPS only.
//
// The container, table and queue names below are the ones in shared/config.py (Containers, Tables,
// Queues); tests/unit/test_infra_names.py fails when the two disagree.

@description('Storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Replication. Backups deserve a second region: GRS (or GZRS where zones exist) by default.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Days a deleted blob, blob version or container stays recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int

@description('Days a previous blob version is kept before the lifecycle policy deletes it.')
@minValue(1)
@maxValue(365)
param versionRetentionDays int

@description('Days after its last write that a prepared download archive is deleted (the app removes it after 8 hours; this is the safety net).')
@minValue(1)
@maxValue(30)
param archiveRetentionDays int

@description('Days after its last write that an uploaded archive or a pending upload file is deleted (abandoned uploads).')
@minValue(1)
@maxValue(30)
param uploadRetentionDays int

@description('Time-based immutability (WORM) of the snapshots container in days; 0 turns it off. See infra/README.md: it must stay below the shortest backup retention (14 days).')
@minValue(0)
@maxValue(13)
param snapshotImmutabilityDays int

@description('Log Analytics workspace that receives the storage resource logs.')
param logAnalyticsWorkspaceId string

@description('Origins whose pages may PUT uploads to and GET downloads from their SAS URLs: the Backups page, served by the function app.')
param browserOrigins array

// Blob containers: shared/config.py Containers.ALL.
var containerNames = [
  'snapshots' // Containers.SNAPSHOTS: database dumps and manifests, one folder per snapshot
  'content' // Containers.CONTENT: file-document content store, shared per namespace
  'archives' // Containers.ARCHIVES: prepared download archives
  'uploads' // Containers.UPLOADS: archives uploaded by clients, before ingest
  'maintenance' // Containers.MAINTENANCE: pruning's marks between runs
  'wal' // Containers.WAL: barman-cloud's base backups and archived WAL (point-in-time recovery)
]

// Tables: shared/config.py Tables.ALL (the catalog).
var tableNames = [
  'environments'
  'snapshots'
  'activity'
  'operations'
  'members'
  'schedules'
  'uploads'
  'webhooks'
  'eventdeliveries'
  'captures'
]

// Queues: shared/config.py Queues.ALL and each one's poison queue (Queues.poison).
var queueNames = [
  'operation-work'
  'operation-work-poison'
  'scheduled-backups'
  'scheduled-backups-poison'
  'events'
  'events-poison'
  'event-deliveries'
  'event-deliveries-poison'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59: Public network access stays enabled because the function app has no virtual network (see CKV_AZURE_35); every request still needs an Entra ID token and a data role.
  // checkov:skip=CKV_AZURE_206: The SKU is the skuName parameter; main.bicep defaults it to Standard_GRS (geo-replicated). LRS and ZRS stay allowed for regions without a paired region, which checkov cannot see.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: The function app runs without a virtual network (Elastic Premium, no VNet integration), so the account must accept its traffic over the public endpoint; access is Entra ID + RBAC only (allowSharedKeyAccess false). infra/README.md, Network isolation, describes the private-endpoint variant.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
    sasPolicy: {
      sasExpirationPeriod: '1.00:00:00'
      expirationAction: 'Log'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    // A browser may only use a SAS URL it already holds; no anonymous access follows from this.
    cors: {
      corsRules: [
        {
          allowedOrigins: browserOrigins
          allowedMethods: [
            'GET'
            'HEAD'
            'PUT'
            'OPTIONS'
          ]
          allowedHeaders: [
            'content-type'
            'x-ms-*'
          ]
          exposedHeaders: [
            'content-length'
            'etag'
            'x-ms-*'
          ]
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

// Optional WORM for the snapshots container (index 0 above): a container-level time-based retention
// policy, created unlocked. Finished backup data is never rewritten, so writes keep working; deletes
// (pruning, removing a failed backup's partial data) are refused until the period has passed.
resource snapshotImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (snapshotImmutabilityDays > 0) {
  parent: containers[0]
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: snapshotImmutabilityDays
    allowProtectedAppendWrites: false
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

// Lifecycle rules. Scoped by prefix to the app's containers: the Functions host's own containers
// (azure-webjobs-*) hold its keys and must never be touched by a lifecycle rule.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-download-archives'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'archives/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: archiveRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'expire-abandoned-uploads'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'uploads/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: uploadRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'expire-previous-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'snapshots/'
                'content/'
                'archives/'
                'uploads/'
                'maintenance/'
                'wal/'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: versionRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    containers
  ]
}

// Resource logs of the data plane (who read, wrote, deleted what) go to Log Analytics.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output snapshotImmutabilityDays int = snapshotImmutabilityDays
