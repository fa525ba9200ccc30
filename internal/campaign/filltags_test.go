package campaign_test

import (
	"testing"

	"github.com/consentry/consentry/internal/campaign"
)

// TestFillTags: other email written with tags is filled in as a campaign
// fills them: inside an address, HTML or plain text, a value is
// percent-encoded (every byte but letters, digits and "-._~"), then
// escaped in HTML; elsewhere it is as written, escaped in HTML; a tag
// without a value is left for whoever fills it in later.
func TestFillTags(t *testing.T) {
	tags := map[string]string{campaign.TagFirstName: "Zoë & Co? #1", campaign.TagLastName: `<b>"Lind"</b>`}
	const enc = "Zo%C3%AB%20%26%20Co%3F%20%231"
	for _, c := range []struct {
		src  string
		html bool
		want string
	}{
		{"Hi {{ first_name }} {{last_name}}", false, `Hi Zoë & Co? #1 <b>"Lind"</b>`},
		{"Go to https://shop.example/?n={{first_name}}&x=1 now", false, "Go to https://shop.example/?n=" + enc + "&x=1 now"},
		{`<p>{{first_name}}</p><a href="https://shop.example/{{last_name}}?n={{first_name}}&amp;x=1">x</a>`, true,
			`<p>Zoë &amp; Co? #1</p><a href="https://shop.example/%3Cb%3E%22Lind%22%3C%2Fb%3E?n=` + enc + `&amp;x=1">x</a>`},
		{`<a href="{{unsubscribe_url}}">Leave</a> {{ unsubscribe_url }}`, true, `<a href="{{unsubscribe_url}}">Leave</a> {{unsubscribe_url}}`},
		{"", true, ""},
	} {
		if got := campaign.FillTags(c.src, c.html, tags); got != c.want {
			t.Errorf("FillTags(%q, %v)\n got %s\nwant %s", c.src, c.html, got, c.want)
		}
	}
}
