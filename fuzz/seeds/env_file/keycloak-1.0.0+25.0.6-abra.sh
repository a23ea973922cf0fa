# abra.sh: shell helpers abra runs with `abra app cmd`; hearth reads only the export lines as data.
export ENTRYPOINT_VERSION=v1

set_admin_pass() {
  echo "setting admin password for $DOMAIN"
}
