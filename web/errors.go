package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// apiError is the body of every error: {"error":{"code":"…","message":"…"}}.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func fail(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": apiError{Code: code, Message: message}})
}

func failField(c *gin.Context, status int, code, field, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": apiError{Code: code, Message: message, Field: field}})
}

func notFound(c *gin.Context, what string) {
	fail(c, http.StatusNotFound, "not_found", what+" not found")
}
