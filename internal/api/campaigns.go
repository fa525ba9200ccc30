package api

import (
	"context"
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
)

// campaignRoutes serve campaigns and their templates. Sending email to an
// audience is more than the ordinary API may do: every route needs a
// token with the campaigns scope.
func (s *Server) campaignRoutes() []Route {
	const c, tag, sc = "/api/v1/campaigns", "campaigns", auth.ScopeCampaigns
	const t = "/api/v1/campaign-templates"
	id := c + "/{id}"
	return []Route{
		{Method: "GET", Path: c, Tag: tag, Scope: sc, Status: 200, Response: []campaign.Campaign{},
			Summary: "List the campaigns", handle: s.allCampaigns},
		{Method: "POST", Path: c, Tag: tag, Scope: sc, Status: 201, Request: campaign.Input{}, Response: campaign.Campaign{},
			Summary: "Create a campaign as a draft; tags in the content are checked now", handle: s.createCampaign},
		{Method: "GET", Path: id, Tag: tag, Scope: sc, Status: 200, Response: campaign.Campaign{},
			Summary: "Get a campaign", handle: s.getCampaign},
		{Method: "PATCH", Path: id, Tag: tag, Scope: sc, Status: 200, Request: campaign.Input{}, Response: campaign.Campaign{},
			Summary: "Change a draft or scheduled campaign", handle: s.updateCampaign},
		{Method: "DELETE", Path: id, Tag: tag, Scope: sc, Status: 204,
			Summary: "Delete a draft; a campaign that started is cancelled instead", handle: s.deleteCampaign},
		{Method: "POST", Path: id + "/send", Tag: tag, Scope: sc, Status: 200, Response: campaign.Campaign{},
			Summary: "Start sending a draft or scheduled campaign now", handle: s.campaignAction((*campaign.Service).Send)},
		{Method: "POST", Path: id + "/schedule", Tag: tag, Scope: sc, Status: 200, Request: ScheduleRequest{}, Response: campaign.Campaign{},
			Summary: "Schedule a draft (or move a scheduled campaign) to start at a time to come", handle: s.scheduleCampaign},
		{Method: "POST", Path: id + "/pause", Tag: tag, Scope: sc, Status: 200, Response: campaign.Campaign{},
			Summary: "Pause a sending campaign after the batches in flight", handle: s.campaignAction((*campaign.Service).Pause)},
		{Method: "POST", Path: id + "/resume", Tag: tag, Scope: sc, Status: 200, Response: campaign.Campaign{},
			Summary: "Resume a paused campaign where it stopped", handle: s.campaignAction((*campaign.Service).Resume)},
		{Method: "POST", Path: id + "/cancel", Tag: tag, Scope: sc, Status: 200, Response: campaign.Campaign{},
			Summary: "Cancel a campaign for good; what was sent stays recorded", handle: s.campaignAction((*campaign.Service).Cancel)},
		{Method: "POST", Path: id + "/retry-unknown", Tag: tag, Scope: sc, Status: 200, Response: RetryResult{},
			Summary: "Queue again the recipients whose outcome is unknown; some of them may get the message twice", handle: s.retryUnknown},
		{Method: "POST", Path: id + "/test", Tag: tag, Scope: sc, Status: 204, Request: TestRequest{},
			Summary: "Send the campaign, with example names and links, to users' addresses; nothing is recorded for any contact", handle: s.testCampaign},
		{Method: "GET", Path: id + "/preview", Tag: tag, Scope: sc, Status: 200, Response: campaign.Rendered{},
			Query:   []Param{{Name: "contact", Doc: "the contact's id", Type: "string"}},
			Summary: "The campaign as a contact would receive it now, or why they would not", handle: s.previewCampaign},
		{Method: "GET", Path: id + "/audience", Tag: tag, Scope: sc, Status: 200, Response: campaign.Audience{},
			Summary: "Count who the campaign would reach now and who it would exclude, by reason; writes nothing", handle: s.campaignAudience},
		{Method: "GET", Path: id + "/progress", Tag: tag, Scope: sc, Status: 200, Response: campaign.Progress{},
			Summary: "The campaign's recipients by status", handle: s.campaignProgress},
		{Method: "GET", Path: id + "/report", Tag: tag, Scope: sc, Status: 200, Response: campaign.Report{},
			Summary: "What became of the campaign: its audience with the exclusions by reason, its recipients by status, deliveries, bounces, opens, clicks and unsubscribes", handle: s.campaignReport},

		{Method: "GET", Path: t, Tag: tag, Scope: sc, Status: 200, Response: []campaign.Template{},
			Summary: "List the campaign templates", handle: s.allTemplates},
		{Method: "POST", Path: t, Tag: tag, Scope: sc, Status: 201, Request: campaign.TemplateInput{}, Response: campaign.Template{},
			Summary: "Create a campaign template", handle: s.createTemplate},
		{Method: "GET", Path: t + "/{id}", Tag: tag, Scope: sc, Status: 200, Response: campaign.Template{},
			Summary: "Get a campaign template", handle: s.getTemplate},
		{Method: "PATCH", Path: t + "/{id}", Tag: tag, Scope: sc, Status: 200, Request: campaign.TemplateInput{}, Response: campaign.Template{},
			Summary: "Change a campaign template", handle: s.updateTemplate},
		{Method: "DELETE", Path: t + "/{id}", Tag: tag, Scope: sc, Status: 204,
			Summary: "Delete a campaign template no campaign uses", handle: s.deleteTemplate},
	}
}

// ScheduleRequest schedules a campaign.
type ScheduleRequest struct {
	ScheduledAt time.Time `json:"scheduled_at" required:"true" doc:"when sending starts (RFC 3339); must be in the future"`
}

// TestRequest sends a campaign as a test.
type TestRequest struct {
	To []string `json:"to" required:"true" doc:"1 to 10 users' addresses"`
}

// RetryResult says how many recipients were queued again.
type RetryResult struct {
	Queued int64 `json:"queued"`
}

func (s *Server) allCampaigns(r *http.Request, _ consent.Actor) (int, any, error) {
	all, err := s.Campaigns.List(r.Context())
	return 200, all, err
}

func (s *Server) createCampaign(r *http.Request, caller consent.Actor) (int, any, error) {
	var in campaign.Input
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := s.Campaigns.Create(r.Context(), audit.Actor(caller), in)
	return 201, c, err
}

func (s *Server) getCampaign(r *http.Request, _ consent.Actor) (int, any, error) {
	c, err := s.Campaigns.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, c, err)
}

func (s *Server) updateCampaign(r *http.Request, caller consent.Actor) (int, any, error) {
	var in campaign.Input
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := s.Campaigns.Update(r.Context(), audit.Actor(caller), r.PathValue("id"), in)
	return pathResult(200, c, err)
}

func (s *Server) deleteCampaign(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Campaigns.Delete(r.Context(), audit.Actor(caller), r.PathValue("id")))
}

// campaignAction serves a change of status that takes nothing but the id.
func (s *Server) campaignAction(do func(*campaign.Service, context.Context, audit.Actor, string) (*campaign.Campaign, error)) handlerFunc {
	return func(r *http.Request, caller consent.Actor) (int, any, error) {
		c, err := do(s.Campaigns, r.Context(), audit.Actor(caller), r.PathValue("id"))
		return pathResult(200, c, err)
	}
}

func (s *Server) scheduleCampaign(r *http.Request, caller consent.Actor) (int, any, error) {
	var in ScheduleRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := s.Campaigns.Schedule(r.Context(), audit.Actor(caller), r.PathValue("id"), in.ScheduledAt)
	return pathResult(200, c, err)
}

func (s *Server) retryUnknown(r *http.Request, caller consent.Actor) (int, any, error) {
	n, err := s.Campaigns.RetryUnknown(r.Context(), audit.Actor(caller), r.PathValue("id"))
	return pathResult(200, RetryResult{Queued: n}, err)
}

func (s *Server) testCampaign(r *http.Request, _ consent.Actor) (int, any, error) {
	var in TestRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return pathResult[any](204, nil, s.CampaignSender.Test(r.Context(), r.PathValue("id"), in.To))
}

// previewCampaign looks the campaign up first, so that an unknown campaign
// is a 404 while an unknown contact is an error on the contact parameter.
func (s *Server) previewCampaign(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Campaigns.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	out, err := s.CampaignSender.Render(r.Context(), r.PathValue("id"), r.URL.Query().Get("contact"))
	return 200, out, err
}

func (s *Server) campaignAudience(r *http.Request, _ consent.Actor) (int, any, error) {
	a, err := s.Campaigns.Preview(r.Context(), r.PathValue("id"))
	return pathResult(200, a, err)
}

func (s *Server) campaignProgress(r *http.Request, _ consent.Actor) (int, any, error) {
	p, err := s.Campaigns.Progress(r.Context(), r.PathValue("id"))
	return pathResult(200, p, err)
}

func (s *Server) campaignReport(r *http.Request, _ consent.Actor) (int, any, error) {
	rep, err := s.Campaigns.Report(r.Context(), r.PathValue("id"))
	return pathResult(200, rep, err)
}

func (s *Server) allTemplates(r *http.Request, _ consent.Actor) (int, any, error) {
	all, err := s.Campaigns.Templates(r.Context())
	return 200, all, err
}

func (s *Server) createTemplate(r *http.Request, caller consent.Actor) (int, any, error) {
	var in campaign.TemplateInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	t, err := s.Campaigns.CreateTemplate(r.Context(), audit.Actor(caller), in)
	return 201, t, err
}

func (s *Server) getTemplate(r *http.Request, _ consent.Actor) (int, any, error) {
	t, err := s.Campaigns.Template(r.Context(), r.PathValue("id"))
	return pathResult(200, t, err)
}

func (s *Server) updateTemplate(r *http.Request, caller consent.Actor) (int, any, error) {
	var in campaign.TemplateInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	t, err := s.Campaigns.UpdateTemplate(r.Context(), audit.Actor(caller), r.PathValue("id"), in)
	return pathResult(200, t, err)
}

func (s *Server) deleteTemplate(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Campaigns.DeleteTemplate(r.Context(), audit.Actor(caller), r.PathValue("id")))
}
