{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'loot' }, data: { s: importstr '../../../outside/secret.yaml' } }
