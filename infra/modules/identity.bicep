// The app's user-assigned managed identity: the one principal the function app signs in as, to
// storage, Key Vault, the container registry, Application Insights and (optionally) PostgreSQL.
// Its role assignments are in roles.bicep.

@description('Identity name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
