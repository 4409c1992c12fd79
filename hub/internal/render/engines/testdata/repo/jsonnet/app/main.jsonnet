// An Argo CD style Jsonnet app: external variables, a top-level argument,
// an import beside the file and one from a library folder.
local k = import 'k/k.libsonnet';
local params = import 'params.libsonnet';

function(team='nobody') [
  k.configMap('settings', {
    env: std.extVar('env'),
    team: team,
    replicas: std.toString(std.extVar('replicas') * params.factor),
  }),
  k.deployment('web', std.extVar('replicas') * params.factor),
]
