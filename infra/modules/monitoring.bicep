// Monitoring: a Log Analytics workspace, workspace-based Application Insights that accepts only
// Entra ID-authenticated telemetry (local auth off; the app's identity has Monitoring Metrics
// Publisher, roles.bicep), a workbook and log search alerts:
//   - failed backups (alerts/failed-backups.kql), every 15 minutes;
//   - environments without a successful backup in 26 hours (alerts/stale-backups.kql), hourly: the
//     app's own hourly freshness check logs each stale environment, and the alert picks those lines up;
//   - on the app's OpenTelemetry metrics (docs/operations/telemetry.md): a recovery point older than
//     26 hours (alerts/recovery-point-age.kql), a restore drill failed (alerts/drill-failed.kql), a
//     poison queue not empty (alerts/poison-queue.kql), an operation Stalled for longer than its bound
//     (alerts/stalled-operations.kql).
// All are stateful and split by environment (the poison queue's by queue): an alert fires once per
// environment and resolves by itself when the condition clears. An action group mails
// alertEmailAddresses when any are given. The workbook (workbooks/appbackups.workbook.json) shows, per
// namespace and environment, the last backup and recovery point age, failures, drill results and
// measured restore time, and the storage used with its trend.

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

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'appbackups-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: '${namePrefix}: backups, restores and drills'
    category: 'workbook'
    sourceId: appInsights.id
    version: '1.0'
    serializedData: replace(loadTextContent('../workbooks/appbackups.workbook.json'), '__APP_INSIGHTS_ID__', appInsights.id)
  }
}

resource recoveryPointAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-recovery-point-26h'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: recovery point older than 26 hours'
    description: 'An environment whose latest recovery point (its newest successful backup, or the latest restorable instant of its recovery window) is more than 26 hours old: a night was missed. One alert per environment, resolved when a new recovery point is reported.'
    severity: 1
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
          query: loadTextContent('../alerts/recovery-point-age.kql')
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

resource drillFailedAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-drill-failed'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a restore drill failed'
    description: 'A restore drill (the weekly one, or POST .../verify) failed: a check failed, or the drill could not run. One alert per environment; the error codes are in the alert, the reason in the backup verification and the activity log.'
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
          query: loadTextContent('../alerts/drill-failed.kql')
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

resource poisonQueueAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a poison queue is not empty'
    description: 'A work message failed on every delivery and was moved to its poison queue (an operation message is abandoned at once, its operation failed and undone). One alert per queue; look at the messages and the logs of their failures.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/poison-queue.kql')
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'queue'
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

resource stalledOperationsAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-operation-stalled'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: an operation Stalled for longer than its bound'
    description: 'A backup, restore, drill, download or upload whose worker stopped checking in was not resumed within its bound (the reaper interval past the stale time, 5 minutes with the defaults): the watchdog and the reaper did not bring it back. One alert per environment.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/stalled-operations.kql')
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
  recoveryPointAlert.name
  drillFailedAlert.name
  poisonQueueAlert.name
  stalledOperationsAlert.name
]
output workbookId string = workbook.id
