{{- define "full.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end -}}
