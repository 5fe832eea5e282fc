// Point-in-time restore of Azure Database for PostgreSQL flexible servers (docs/decisions/0017), in one resource
// group that holds such servers: a custom role with exactly what the app does there, assigned to its identity.
// No built-in role is that narrow (Contributor would let it change anything in the group). What it allows:
//   read a server (its earliest restore date, location, network, tags), restore one beside it (write: a server
//   created with create mode PointInTimeRestore) and delete that copy; read the copy's databases; give a public
//   server's copy the source's firewall rules; follow Azure's long-running operations; and, for a server in a
//   virtual network, join its delegated subnet and private DNS zone (a group that holds the network needs those).
// main.bicep deploys it once per resource group of flexibleServerResourceGroups.

targetScope = 'resourceGroup'

@description('Object (principal) id of the app managed identity.')
param principalId string

@description('Short name of the deployment (appName of main.bicep): custom role names are unique in a tenant.')
param appName string

var actions = [
  'Microsoft.DBforPostgreSQL/flexibleServers/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/write'
  'Microsoft.DBforPostgreSQL/flexibleServers/delete'
  'Microsoft.DBforPostgreSQL/flexibleServers/databases/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write'
  'Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read'
  'Microsoft.DBforPostgreSQL/locations/operationResults/read'
  'Microsoft.Network/virtualNetworks/subnets/join/action'
  'Microsoft.Network/privateDnsZones/join/action'
]

resource restorer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, appName, 'appbackups flexible-server point-in-time restore')
  properties: {
    roleName: 'appbackups ${appName} point-in-time restore of flexible servers in ${resourceGroup().name}'
    description: 'Restores a flexible server of this resource group to an instant into a temporary server beside it, reads that copy, and deletes it (appbackups, docs/decisions/0017).'
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource restorerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, restorer.name)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', restorer.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleDefinitionId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', restorer.name)
