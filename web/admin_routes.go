package web

import "github.com/gin-gonic/gin"

// defaultMaxImportBytes bounds an import body, as catalog itself does.
const defaultMaxImportBytes = 64 << 20

// adminRoutes registers the catalog administration (regions, bulk import
// and export, access previews) and account endpoints (users, roles,
// sessions, API tokens, the caller's own password, sessions and tokens).
// They live in one block so the route table stays easy to read and merge.
//
// Everything here sits behind authenticate; routes for administrators add
// requireManage, the /me routes act on the caller only.
func (s *Server) adminRoutes(authed *gin.RouterGroup) {
	admin := s.requireManage

	authed.GET("/regions", s.listRegions)
	authed.GET("/regions/:code", s.getRegion)
	authed.POST("/regions", admin, s.createRegion)
	authed.POST("/regions/import", admin, s.importRegions)
	authed.PATCH("/regions/:code", admin, s.patchRegion)
	authed.DELETE("/regions/:code", admin, s.deleteRegion)

	authed.POST("/points/import", admin, s.importPoints)
	authed.GET("/points/export", s.exportPoints)
	authed.GET("/points/:id/access", admin, s.pointAccess)

	authed.POST("/me/password", s.changeMyPassword)
	authed.GET("/me/sessions", s.listMySessions)
	authed.DELETE("/me/sessions", s.revokeMySessions)
	authed.DELETE("/me/sessions/:id", s.revokeMySession)
	authed.POST("/me/tokens", s.createMyToken)
	authed.GET("/me/tokens", s.listMyTokens)
	authed.DELETE("/me/tokens/:id", s.revokeMyToken)

	authed.POST("/users", admin, s.createUser)
	authed.GET("/users", admin, s.listUsers)
	authed.GET("/users/:name", admin, s.getUser)
	authed.PATCH("/users/:name", admin, s.patchUser)
	authed.DELETE("/users/:name", admin, s.deleteUser)
	authed.POST("/users/:name/password", admin, s.resetPassword)
	authed.GET("/users/:name/sessions", admin, s.listUserSessions)
	authed.DELETE("/users/:name/sessions", admin, s.revokeUserSessions)
	authed.DELETE("/users/:name/sessions/:id", admin, s.revokeUserSession)
	authed.GET("/users/:name/tokens", admin, s.listUserTokens)
	authed.DELETE("/users/:name/tokens/:id", admin, s.revokeUserToken)
	authed.GET("/users/:name/access", admin, s.userAccess)

	authed.POST("/roles", admin, s.createRole)
	authed.GET("/roles", admin, s.listRoles)
	authed.DELETE("/roles/:name", admin, s.deleteRole)
}
