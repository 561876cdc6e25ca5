package agentlink

// The agent's provisioning page has no grants of its own: for every
// decision it asks the centre, with the technician's token, over plain
// HTTPS authenticated by the agent's own credentials (HTTP Basic
// agent-id:secret). These are the names both ends agree on.

// PageAccessPath is where an agent asks what the technician logged in on
// its page may do with its cameras (GET; Basic agent credentials, the
// technician's token in UserTokenHeader).
const PageAccessPath = "/api/v1/agents/page-access"

// UserTokenHeader carries the technician's session token on a request the
// agent authenticates with its own credentials.
const UserTokenHeader = "X-Tianyan-User-Token"

// ClientAddressHeader carries the address of the technician's browser when
// the agent logs them in at the centre on their behalf. The centre believes
// it only on a request that also carries valid agent credentials, and
// throttles and audits the login under that address as seen by that agent.
const ClientAddressHeader = "X-Tianyan-Client-Address"

// PageAccess is the centre's answer at PageAccessPath: what one user may do
// on one agent's page. Every field is decided by the centre's permissions.
type PageAccess struct {
	// User is the technician the token belongs to.
	User string `json:"user"`
	// Region is the agent's region ("" when none was set: then only
	// provision grants for all regions cover it).
	Region string `json:"region"`
	// ProvisionSomewhere: the user holds a valid provision grant anywhere
	// (or is an administrator). Nobody else may use the page.
	ProvisionSomewhere bool `json:"provision_somewhere"`
	// ProvisionHere: the user's provision grants cover the agent's region;
	// only then are the agent's unbound cameras theirs to see and register.
	ProvisionHere bool `json:"provision_here"`
	// Bound lists every camera of this agent that a point is bound to, with
	// the user's actions on that point (none for points they may not see).
	Bound []BoundCamera `json:"bound"`
}

// BoundCamera is one of the agent's cameras that a point is bound to.
type BoundCamera struct {
	Camera string `json:"camera"`
	Point  string `json:"point"`
	// Name is the point's name, given only when the user may view it.
	Name string `json:"name,omitempty"`
	// Actions are the user's actions on the point (permissions' names:
	// "view", "snapshot", "manage", …); empty when they may do nothing.
	Actions []string `json:"actions"`
}
