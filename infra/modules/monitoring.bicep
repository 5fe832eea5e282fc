// Monitoring: a Log Analytics workspace, workspace-based Application Insights that accepts only
// Entra ID-authenticated telemetry (local auth off; the app's identity has Monitoring Metrics
// Publisher, roles.bicep), and two log search alerts:
//   - failed backups (alerts/failed-backups.kql), every 15 minutes;
//   - environments without a successful backup in 26 hours (alerts/stale-backups.kql), hourly: the
//     app's own hourly freshness check logs each stale environment, and the alert picks those lines up.
// Both are stateful and split by environment: an alert fires once per environment and resolves by
// itself when the condition clears. An action group mails alertEmailAddresses when any are given.

@description('Name prefix of the resources.')
param namePrefix string

@description('Log Analytics workspace name.')
param workspaceName string

@description('Application Insights name.')
param appInsightsName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param retentionDays int

@description('E-mail addresses that receive the alerts; empty: the alerts fire in the portal only.')
param alertEmailAddresses array

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddresses)) {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take(namePrefix, 12)
    enabled: true
    emailReceivers: [for (address, index) in alertEmailAddresses: {
      name: 'email-${index}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
  }
}

var actionGroupIds = empty(alertEmailAddresses) ? [] : [
  actionGroup.id
]

resource failedBackupsAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-failed-backups'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: failed backups'
    description: 'A backup failed for good (all attempts used, or its worker vanished). One alert per environment; the reason is in the activity log and the backup status message.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/failed-backups.kql')
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'environment'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource staleBackupsAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-no-backup-26h'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: no successful backup in 26 hours'
    description: 'The app hourly freshness check found an environment without a successful backup in its freshness window (26 hours by default). One alert per environment, resolved when its backups are fresh again.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT2H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/stale-backups.kql')
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'environment'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output alertRuleNames array = [
  failedBackupsAlert.name
  staleBackupsAlert.name
]
