package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/consentry/consentry/internal/errs"
)

// Policy says where webhooks may go: https:// addresses, never an address
// that reaches the machine's own link (link-local, cloud metadata), an
// unspecified or a multicast address, and loopback only in development.
// It is checked when a URL is saved and again on the address actually
// dialled, so a name that resolves elsewhere later (DNS rebinding) cannot
// get around it. Addresses on private networks are allowed: a receiver on
// the operator's own network is a common case.
type Policy struct {
	// AllowHTTPLocalhost lets endpoints be http:// (or https://) addresses
	// on this machine: localhost or a loopback address
	// (CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST).
	AllowHTTPLocalhost bool
	// Lookup resolves a host name to its addresses; nil means the
	// system's resolver. Tests set it to resolve names of their own.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

const maxURL = 2000

// blockedNames are host names of cloud metadata services.
var blockedNames = []string{"metadata.google.internal", "metadata.goog", "metadata"}

// metadataAddrs are cloud metadata addresses outside the link-local ranges.
var metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}

// isLocalName reports whether host names this machine.
func isLocalName(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// CheckURL returns raw as it will be called, or an error naming the field
// url that says why it may not be.
func (p Policy) CheckURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errs.Required("url")
	}
	if len(raw) > maxURL {
		return "", errs.Invalid("url", "must be at most %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", errs.Invalid("url", "must be an absolute https:// address, e.g. https://crm.example.com/hooks/consentry")
	}
	if u.User != nil {
		return "", errs.Invalid("url", "must not hold a user name or password; the signature authenticates each delivery")
	}
	if u.Fragment != "" {
		return "", errs.Invalid("url", "must not have a #fragment")
	}
	if err := errs.Port("url", u); err != nil {
		return "", err
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	local := isLocalName(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := p.refuse(ip); why != "" {
			return "", errs.Invalid("url", "%s", why)
		}
		local = ip.Unmap().IsLoopback()
	}
	switch {
	case local && !p.AllowHTTPLocalhost:
		return "", errs.Invalid("url", "must not be on this machine (localhost) unless CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST is set, for development")
	case u.Scheme == "https":
	case u.Scheme == "http" && local:
	case u.Scheme == "http":
		return "", errs.Invalid("url", "must be https:// (plain http:// only to localhost in development)")
	default:
		return "", errs.Invalid("url", "must be an https:// address, not %s:", u.Scheme)
	}
	for _, n := range blockedNames {
		if host == n {
			return "", errs.Invalid("url", "must not be a cloud metadata service")
		}
	}
	return u.String(), nil
}

// refuse says why ip may not be called, or "" when it may.
func (p Policy) refuse(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "must not be a link-local address (169.254.0.0/16, fe80::/10), where cloud metadata services answer"
	case ip.IsUnspecified():
		return "must not be an unspecified address (0.0.0.0, ::)"
	case ip.IsMulticast():
		return "must not be a multicast address"
	case ip.IsLoopback() && !p.AllowHTTPLocalhost:
		return "must not be a loopback address unless CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST is set, for development"
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return "must not be a cloud metadata service"
		}
	}
	return ""
}

// errRefused is the error of a dial to an address the policy refuses.
var errRefused = errors.New("address not allowed for webhooks")

// control checks, just before a socket connects, the address it connects
// to: what a name resolved to at this moment, whatever it was when saved.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errRefused, address)
	}
	if why := p.refuse(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s %s", errRefused, ap.Addr(), why)
	}
	return nil
}

// dial connects to addr (host:port), resolving the host with Lookup when
// set, every connection through control.
func (p Policy) dial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d.Control = p.control
	if p.Lookup == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips := []netip.Addr{}
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = append(ips, ip)
		} else if ips, err = p.Lookup(ctx, host); err != nil {
			return nil, err
		}
		var last error = fmt.Errorf("no address for %s", host)
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			last = err
		}
		return nil, last
	}
}
