/* Unit tests of kf_json: the flat JSON <-> protobuf mapping (DESIGN §2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_json.h"
#include "kf_util.h"

/* One realistic event per topic of the contract, every payload field set, keys in the
 * order the output uses, times in +08:00: each must come back byte for byte. */
static const char *const s_events[] = {
    "{\"topic\":\"shop.config\",\"event_id\":\"cfg-1\",\"shop_id\":\"s1\","
    "\"occurred_at\":\"2026-11-01T08:00:00+08:00\",\"source\":\"admin\",\"name\":\"小美家纺旗舰店\","
    "\"utc_offset_minutes\":480,\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"08:00\"},"
    "\"ship_cutoff_hour\":16,\"promised_ship_hours\":72,\"phone_windows\":[{\"start\":\"10:00\","
    "\"end\":\"11:30\"},{\"start\":\"19:30\",\"end\":\"20:30\"}],\"compensation_neutral_fen\":500,"
    "\"compensation_bad_fen\":1500,\"agents\":[\"a1\",\"小王\"],"
    "\"webhook_url\":\"https://hooks.example.com/kefu/s1?k=v&x=1\",\"templates\":[{\"kind\":"
    "\"payment_reminder\",\"channel\":\"sms\",\"text\":\"亲，您在{shop}的订单还未付款哦\"},"
    "{\"kind\":\"care_usage\",\"text\":\"{buyer}您好，{item}用着还好吗？\"}],\"festivals\":"
    "[{\"date\":\"09-15\",\"name\":\"中秋节\"},{\"date\":\"2026-02-17\",\"name\":\"春节\"}],"
    "\"working_hours\":{\"start\":\"09:00\",\"end\":\"22:00\"},\"daily_contact_cap\":2,"
    "\"marketing_sms_daily_cap\":1,\"marketing_sms_weekly_cap\":3,\"phone_daily_cap\":1,"
    "\"large_order_fen\":80000,\"cause_keywords\":[{\"cause\":\"logistics\",\"words\":[\"慢\","
    "\"快递\"]},{\"cause\":\"product\",\"words\":[\"起球\"]}]}",
    "{\"topic\":\"order.created\",\"event_id\":\"o-1001\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-11T09:05:00.250+08:00\",\"published_at\":\"2026-11-11T09:05:01+08:00\","
    "\"seq\":0,\"source\":\"tmall\",\"order_id\":\"1001\",\"buyer\":{\"buyer_id\":\"b9\","
    "\"nick\":\"小美\",\"name\":\"张三丰\",\"phone\":\"13800000000\",\"city\":\"杭州\","
    "\"province\":\"浙江\"},\"items\":[{\"sku_id\":\"k1\",\"title\":\"真丝四件套\",\"qty\":1,"
    "\"price_fen\":59900},{\"sku_id\":\"k2\",\"title\":\"乳胶枕 \\\"特价\\\"\",\"qty\":2,"
    "\"price_fen\":0}],\"total_fen\":59900,\"kind\":\"flash_sale\",\"created_at\":"
    "\"2026-11-11T09:05:00+08:00\",\"pay_deadline_at\":\"2026-11-11T09:35:00+08:00\","
    "\"promotion\":\"双11\"}",
    "{\"topic\":\"order.paid\",\"event_id\":\"p-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-11T09:10:00+08:00\",\"seq\":18446744073709,\"order_id\":\"1001\",\"at\":"
    "\"2026-11-11T09:10:00+08:00\",\"buyer_id\":\"b9\",\"amount_fen\":59900}",
    "{\"topic\":\"order.closed\",\"event_id\":\"c-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-14T09:05:00+08:00\",\"order_id\":\"1002\",\"at\":\"2026-11-14T09:05:00+08:00\","
    "\"reason\":\"timeout\",\"buyer_id\":\"b8\"}",
    "{\"topic\":\"order.confirmed\",\"event_id\":\"f-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-20T21:00:00+08:00\",\"order_id\":\"1001\",\"at\":\"2026-11-20T21:00:00+08:00\","
    "\"buyer_id\":\"b9\"}",
    "{\"topic\":\"order.shipped\",\"event_id\":\"sh-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-12T14:00:00+08:00\",\"order_id\":\"1001\",\"carrier\":\"中通\",\"tracking_no\":"
    "\"ZT7700001\",\"shipped_at\":\"2026-11-12T14:00:00+08:00\",\"promised_ship_by\":"
    "\"2026-11-13T09:05:00+08:00\",\"buyer_id\":\"b9\",\"to_city\":\"杭州\",\"to_province\":"
    "\"浙江\"}",
    "{\"topic\":\"logistics.scan\",\"event_id\":\"ls-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-13T06:30:00+08:00\",\"tracking_no\":\"ZT7700001\",\"order_id\":\"1001\","
    "\"carrier\":\"中通\",\"state\":1001,\"city\":\"杭州\",\"description\":\"【杭州市】已到达 "
    "杭州转运中心\",\"at\":\"2026-11-13T06:30:00+08:00\"}",
    "{\"topic\":\"logistics.area_delay\",\"event_id\":\"ad-1\",\"shop_id\":\"s1\","
    "\"occurred_at\":\"2026-11-13T10:00:00+08:00\",\"cities\":[\"乌鲁木齐\",\"拉萨\"],\"until\":"
    "\"2026-11-16T00:00:00+08:00\",\"reason\":\"weather\",\"note\":\"暴雪封路\"}",
    "{\"topic\":\"review.posted\",\"event_id\":\"r-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-21T20:00:00+08:00\",\"review_id\":\"rv1\",\"order_id\":\"1001\",\"buyer\":"
    "{\"buyer_id\":\"b9\",\"nick\":\"小美\"},\"sku_id\":\"k1\",\"rating\":\"bad\",\"text\":"
    "\"颜色和图片差太多了😞\",\"at\":\"2026-11-21T20:00:00+08:00\",\"item_title\":\"真丝四件套\"}",
    "{\"topic\":\"review.modified\",\"event_id\":\"r-2\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-23T10:00:00+08:00\",\"review_id\":\"rv1\",\"order_id\":\"1001\",\"rating\":"
    "\"good\",\"text\":\"客服态度很好，已解决\",\"at\":\"2026-11-23T10:00:00+08:00\"}",
    "{\"topic\":\"review.deleted\",\"event_id\":\"r-3\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-24T10:00:00+08:00\",\"review_id\":\"rv2\",\"rating\":\"neutral\"}",
    "{\"topic\":\"case.updated\",\"event_id\":\"cu-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-22T11:00:00+08:00\",\"case_id\":\"case-7\",\"agent_id\":\"a1\",\"status\":"
    "\"promised\",\"note\":\"买家答应追评\",\"compensation_fen\":1000,\"at\":"
    "\"2026-11-22T11:00:00+08:00\"}",
    "{\"topic\":\"buyer.profile\",\"event_id\":\"bp-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-01T00:00:00+08:00\",\"buyer_id\":\"b9\",\"birthday\":\"03-08\",\"tags\":"
    "[\"VIP\",\"爱买床品\"],\"nick\":\"小美\",\"name\":\"李小美\",\"phone\":\"13900001111\","
    "\"city\":\"杭州\"}",
    "{\"topic\":\"buyer.optout\",\"event_id\":\"bo-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-02T00:00:00+08:00\",\"buyer_id\":\"b9\",\"channels\":[\"sms\",\"phone\"]}",
    "{\"topic\":\"campaign.launch\",\"event_id\":\"cl-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-12-01T09:00:00+08:00\",\"campaign_id\":\"双12-预热\",\"segment\":\"at_risk\",\"tags\":"
    "[\"爱买床品\"],\"level\":\"gold\",\"template\":\"care_campaign\",\"channel\":\"im\","
    "\"window_start_at\":\"2026-12-10T10:00:00+08:00\",\"window_end_at\":"
    "\"2026-12-12T23:59:59.999+08:00\",\"name\":\"双12老客召回\"}",
    "{\"topic\":\"sys.clock\",\"event_id\":\"clk-1\",\"occurred_at\":"
    "\"2026-11-11T12:00:00+08:00\",\"source\":\"sim\",\"now\":\"2026-11-11T12:00:00+08:00\"}",
    "{\"topic\":\"action.contact\",\"event_id\":\"ac-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-11T10:05:00+08:00\",\"action_id\":\"pay:s1:1001:1\",\"buyer_id\":\"b9\","
    "\"order_id\":\"1001\",\"channel\":\"im\",\"reason\":\"payment_reminder\",\"template\":"
    "\"payment_reminder\",\"text\":\"亲，您拍下的真丝四件套还未付款哦\",\"not_before\":"
    "\"2026-11-11T10:05:00+08:00\",\"worker\":\"kefu-pay-reminder\",\"case_id\":\"\","
    "\"contact_class\":\"marketing\",\"deadline_at\":\"2026-11-11T09:35:00+08:00\"}",
    "{\"topic\":\"action.task\",\"event_id\":\"at-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-21T20:00:01+08:00\",\"task_id\":\"t-1\",\"case_id\":\"case-7\",\"agent_id\":\"a1\","
    "\"kind\":\"review_repair\",\"due_at\":\"2026-11-22T20:00:00+08:00\",\"priority\":2,"
    "\"summary\":\"差评修复：颜色差异\",\"order_id\":\"1001\",\"buyer_id\":\"b9\",\"severity\":"
    "\"high\",\"reason\":\"review_repair\"}",
    "{\"topic\":\"action.alert\",\"event_id\":\"al-1\",\"shop_id\":\"s1\",\"occurred_at\":"
    "\"2026-11-15T08:00:00+08:00\",\"alert_id\":\"al:ZT7700001:stalled\",\"kind\":"
    "\"logistics_stalled\",\"severity\":\"warn\",\"order_id\":\"1001\",\"summary\":"
    "\"包裹48小时无更新\",\"buyer_id\":\"b9\",\"tracking_no\":\"ZT7700001\",\"reason\":"
    "\"logistics_stalled\",\"case_id\":\"case-9\"}",
    "{\"topic\":\"sys.heartbeat\",\"event_id\":\"hb-1\",\"occurred_at\":"
    "\"2026-11-11T12:00:05+08:00\",\"seq\":42,\"source\":\"kefu-logistics@0\",\"daemon\":"
    "\"kefu-logistics\",\"instance\":\"0\",\"pid\":4242,\"version\":\"0.1.0\",\"uptime_s\":3600,"
    "\"processed\":123456,\"errors\":0,\"lag\":-1,\"timers_pending\":17,\"applied_seq\":"
    "9007199254740993}",
};

static kf_env_t *s_parse(const char *text, const char *hint, char *err, size_t len)
{
    return kf_json_parse_event(text, strlen(text), hint, err, len);
}

/* text -> protobuf -> bytes -> protobuf -> text, and also against the decoding checks. */
static void test_round_trip_every_topic(void **state)
{
    (void)state;
    assert_int_equal(KF_ARRAY_LEN(s_events), 20);
    for (size_t i = 0; kf_proto_topics[i]; i++) {
        const char *text = s_events[i];
        char err[256] = "", topic[64];
        snprintf(topic, sizeof(topic), "\"topic\":\"%s\"", kf_proto_topics[i]);
        assert_non_null(strstr(text, topic));
        kf_env_t *env = s_parse(text, NULL, err, sizeof(err));
        if (!env)
            fail_msg("%s: %s", kf_proto_topics[i], err);
        size_t len;
        uint8_t *buf = kf_env_pack(env, &len);
        kf_reject_t why;
        kf_env_t *back = kf_proto_decode(buf, len, kf_proto_topics[i], 65536, &why, err,
                                         sizeof(err));
        if (!back)
            fail_msg("%s: rejected (%s): %s", kf_proto_topics[i], kf_reject_name(why), err);
        char *out = kf_json_dump_event(back);
        json_t *a = json_loads(text, 0, NULL), *b = json_loads(out, 0, NULL);
        assert_non_null(a);
        assert_non_null(b);
        if (!json_equal(a, b))
            fail_msg("%s:\n in  %s\n out %s", kf_proto_topics[i], text, out);
        assert_string_equal(out, text); /* same key order, compact, UTF-8 kept */
        json_decref(a);
        json_decref(b);
        free(out);
        free(buf);
        kf_env_free(back);
        kf_env_free(env);
    }
}

static void test_decoded_values(void **state)
{
    (void)state;
    char err[256];
    kf_env_t *env = s_parse(s_events[1], NULL, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(env->payload_case, KEFU__V1__ENVELOPE__PAYLOAD_ORDER_CREATED);
    Kefu__V1__OrderCreated *oc = env->order_created;
    assert_string_equal(oc->buyer->city, "杭州");
    assert_int_equal(oc->n_items, 2);
    assert_int_equal(oc->items[1]->qty, 2);
    assert_true(oc->items[1]->has_price_fen);
    assert_int_equal(oc->kind, KEFU__V1__ORDER_KIND__ORDER_KIND_FLASH_SALE);
    assert_true(env->has_seq);
    assert_int_equal(env->occurred_at, 1794359100250LL);
    kf_env_free(env);

    env = s_parse(s_events[13], NULL, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(env->buyer_optout->n_channels, 2);
    assert_int_equal(env->buyer_optout->channels[0], KEFU__V1__CHANNEL__CHANNEL_SMS);
    assert_int_equal(env->buyer_optout->channels[1], KEFU__V1__CHANNEL__CHANNEL_PHONE);
    kf_env_free(env);
}

static void test_same_instant(void **state)
{
    (void)state;
    const char *forms[] = {"\"2026-11-11T01:00:00Z\"", "\"2026-11-11T09:00:00+08:00\"",
                           "1794358800000", "\"2026-11-10T20:00:00-05:00\"", "1794358800000.0"};
    for (size_t i = 0; i < KF_ARRAY_LEN(forms); i++) {
        char text[256], err[256];
        snprintf(text, sizeof(text), "{\"topic\":\"sys.clock\",\"now\":%s}", forms[i]);
        kf_env_t *env = s_parse(text, NULL, err, sizeof(err));
        if (!env)
            fail_msg("%s: %s", forms[i], err);
        assert_true(env->sys_clock->has_now);
        assert_int_equal(env->sys_clock->now, 1794358800000LL);
        char *out = kf_json_dump_event(env);
        assert_non_null(strstr(out, "\"now\":\"2026-11-11T09:00:00+08:00\""));
        free(out);
        kf_env_free(env);
    }
}

static void test_output_offset(void **state)
{
    (void)state;
    char err[256];
    kf_env_t *env = s_parse("{\"topic\":\"sys.clock\",\"now\":1794358800000}", NULL, err,
                            sizeof(err));
    assert_non_null(env);
    kf_json_set_offset(-330);
    char *out = kf_json_dump_event(env);
    kf_json_set_offset(480);
    assert_non_null(strstr(out, "\"now\":\"2026-11-10T19:30:00-05:30\""));
    free(out);
    kf_env_free(env);
}

/* Asserts that text is rejected with a message containing want. */
static void s_reject(const char *text, size_t len, const char *hint, const char *want)
{
    char err[512] = "";
    kf_env_t *env = kf_json_parse_event(text, len, hint, err, sizeof(err));
    if (env) {
        kf_env_free(env);
        fail_msg("accepted: %s", text);
    }
    if (!strstr(err, want))
        fail_msg("for %s\n got  '%s'\n want '%s'", text, err, want);
    assert_true(kf_utf8_valid(err, strlen(err)));
}

#define REJECT(text, hint, want) s_reject((text), strlen(text), (hint), (want))

static void test_errors(void **state)
{
    (void)state;
    REJECT("{\"topic\":\"order.created\",\"buyer\":{\"buyer_id\":\"b9\",\"phone\":13800000000}}",
           NULL, "key 'buyer.phone': expected string, got integer");
    REJECT("{\"topic\":\"order.created\",\"items\":[{\"sku_id\":\"k1\",\"qty\":1},"
           "{\"sku_id\":\"k2\",\"qty\":\"2\"}]}",
           NULL, "key 'items[1].qty': expected integer, got string");
    REJECT("{\"topic\":\"order.created\",\"order_id\":\"1\",\"totl_fen\":100}", NULL,
           "unknown key 'totl_fen' for topic order.created");
    REJECT("{\"topic\":\"order.created\",\"buyer\":{\"buyer_id\":\"b9\",\"phon\":\"1\"}}", NULL,
           "unknown key 'buyer.phon' for topic order.created");
    REJECT("{\"topic\":\"order.created\",\"items\":[{\"sku\":\"k1\"}]}", NULL,
           "unknown key 'items[0].sku' for topic order.created");
    REJECT("{\"topic\":\"order.paid\",\"order_created\":{}}", NULL,
           "unknown key 'order_created' for topic order.paid");
    REJECT("{\"topic\":\"order.created\",\"kind\":\"flashsale\"}", NULL,
           "key 'kind': unknown value 'flashsale' (one of: normal, flash_sale, presale)");
    REJECT("{\"topic\":\"order.created\",\"kind\":\"unspecified\"}", NULL,
           "key 'kind': unknown value 'unspecified'");
    REJECT("{\"topic\":\"order.created\",\"kind\":0}", NULL, "key 'kind': unknown value 0");
    REJECT("{\"topic\":\"order.created\",\"kind\":\"FLASH_SALE\"}", NULL, "unknown value");
    REJECT("{\"topic\":\"buyer.optout\",\"channels\":[\"sms\",\"fax\"]}", NULL,
           "key 'channels[1]': unknown value 'fax' (one of: im, sms, phone, all)");
    REJECT("{\"topic\":\"order.created\",\"created_at\":\"2026-13-01\"}", NULL,
           "key 'created_at': not an RFC 3339 time or epoch ms: '2026-13-01'");
    REJECT("{\"topic\":\"order.created\",\"created_at\":true}", NULL,
           "key 'created_at': expected RFC 3339 time or epoch ms, got boolean");
    REJECT("{\"topic\":\"order.paid\",\"order_id\":\"1\"}", "order.created",
           "key 'topic': 'order.paid' differs from the expected topic 'order.created'");
    REJECT("{\"topic\":\"order.payed\"}", NULL, "unknown topic 'order.payed'");
    REJECT("{\"order_id\":\"1\"}", "order.payed", "unknown topic 'order.payed'");
    REJECT("{\"order_id\":\"1\"}", NULL, "missing key 'topic'");
    REJECT("{\"topic\":7}", NULL, "key 'topic': expected string, got integer");
    REJECT("[{\"topic\":\"order.paid\"}]", NULL, "expected a JSON object, got array");
    REJECT("\"order.paid\"", NULL, "expected a JSON object, got string");
    REJECT("{\"topic\":\"order.paid\"", NULL, "invalid JSON: ");
    REJECT("{\"topic\":\"order.paid\"} x", NULL, "invalid JSON: ");
    REJECT("", NULL, "invalid JSON: ");
    REJECT("{\"topic\":\"order.paid\",\"order_id\":\"1\",\"order_id\":\"2\"}", NULL,
           "duplicate object key");
    REJECT("{\"topic\":\"logistics.scan\",\"state\":5.5}", NULL,
           "key 'state': expected integer, got real 5.5");
    REJECT("{\"topic\":\"logistics.scan\",\"state\":3000000000}", NULL,
           "key 'state': integer 3000000000 out of range for int32");
    REJECT("{\"topic\":\"sys.heartbeat\",\"processed\":-1}", NULL,
           "key 'processed': integer -1 out of range for uint64");
    REJECT("{\"topic\":\"order.created\",\"buyer\":\"b9\"}", NULL,
           "key 'buyer': expected object, got string");
    REJECT("{\"topic\":\"order.created\",\"items\":{\"sku_id\":\"k1\"}}", NULL,
           "key 'items': expected array, got object");
    REJECT("{\"topic\":\"order.created\",\"items\":[null]}", NULL,
           "key 'items[0]': expected object, got null");
    REJECT("{\"topic\":\"logistics.area_delay\",\"cities\":[\"a\",1]}", NULL,
           "key 'cities[1]': expected string, got integer");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char bad[] = "{\"topic\":\"order.created\",\"buyer\":{\"nick\":\"\xE5\xB0\x8F\xFF\"}}";
    s_reject(bad, sizeof(bad) - 1, NULL, "invalid JSON: ");
    s_reject(bad, sizeof(bad) - 1, NULL, "(invalid UTF-8)");
    const char cut[] = "{\"topic\":\"order.created\",\"order_id\":\"\xE5\xB0\"}";
    s_reject(cut, sizeof(cut) - 1, NULL, "(invalid UTF-8)");

    /* kf_json_to_event with a string that jansson did not check */
    json_t *obj = json_pack("{s:s}", "topic", "order.created");
    json_object_set_new(obj, "order_id", json_stringn_nocheck("1\xC0\xAF", 3));
    char err[256];
    assert_null(kf_json_to_event(obj, NULL, err, sizeof(err)));
    assert_string_equal(err, "key 'order_id': string is not valid UTF-8");
    json_decref(obj);
}

static void test_long_inputs(void **state)
{
    (void)state;
    /* an array over the limit */
    size_t n = 10001, cap = n * 4 + 64;
    char *text = kf_xmalloc(cap);
    size_t o = (size_t)snprintf(text, cap, "{\"topic\":\"buyer.profile\",\"tags\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "%s\"t\"", i ? "," : "");
    snprintf(text + o, cap - o, "]}");
    REJECT(text, NULL, "key 'tags': array of 10001 elements is over the limit of 10000");
    free(text);

    /* a long unknown key is clipped in the message, on a character boundary */
    char key[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(key, "长");
    char buf[600], err[256];
    snprintf(buf, sizeof(buf), "{\"topic\":\"sys.clock\",\"%s\":1}", key);
    assert_null(s_parse(buf, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "...' for topic sys.clock"));
    assert_true(kf_utf8_valid(err, strlen(err)));
    /* a short error buffer is cut on a character boundary too */
    assert_null(s_parse(buf, NULL, err, 24));
    assert_true(kf_utf8_valid(err, strlen(err)));
}

static void test_defaults(void **state)
{
    (void)state;
    char err[256];
    int64_t before = kf_wall_ms();
    kf_env_t *a = s_parse("{\"topic\":\"order.paid\",\"shop_id\":\"s1\",\"order_id\":\"1\"}",
                          NULL, err, sizeof(err));
    kf_env_t *b = s_parse("{\"shop_id\":\"s1\",\"order_id\":\"1\"}", "order.paid", err,
                          sizeof(err));
    int64_t after = kf_wall_ms();
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(b->topic, "order.paid");
    assert_int_equal(strlen(a->event_id), 36);
    assert_int_equal(a->event_id[14], '4');
    assert_string_not_equal(a->event_id, b->event_id);
    assert_true(a->has_occurred_at);
    assert_true(a->occurred_at >= before && a->occurred_at <= after);
    assert_false(a->has_seq);
    assert_false(a->has_published_at);
    assert_int_equal(kf_proto_validate(a, "order.paid", err, sizeof(err)), KF_REJ_NONE);
    kf_env_free(a);
    kf_env_free(b);

    /* proto2 defaults: in the message, but not printed (has_ is false) */
    kf_env_t *c = s_parse("{\"topic\":\"shop.config\",\"event_id\":\"e1\",\"shop_id\":\"s1\","
                          "\"occurred_at\":0,\"name\":\"店\",\"quiet_hours\":null}",
                          NULL, err, sizeof(err));
    assert_non_null(c);
    assert_false(c->shop_config->has_utc_offset_minutes);
    assert_int_equal(c->shop_config->utc_offset_minutes, 480);
    assert_int_equal(c->shop_config->ship_cutoff_hour, 15);
    assert_null(c->shop_config->quiet_hours);
    char *out = kf_json_dump_event(c);
    assert_string_equal(out, "{\"topic\":\"shop.config\",\"event_id\":\"e1\",\"shop_id\":\"s1\","
                             "\"occurred_at\":\"1970-01-01T08:00:00+08:00\",\"name\":\"店\"}");
    free(out);
    kf_env_free(c);
}

static void test_lenient_numbers(void **state)
{
    (void)state;
    char err[256];
    kf_env_t *env = s_parse("{\"topic\":\"order.created\",\"total_fen\":100.0,\"kind\":3,"
                            "\"items\":[],\"buyer\":{}}",
                            NULL, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(env->order_created->total_fen, 100);
    assert_int_equal(env->order_created->kind, KEFU__V1__ORDER_KIND__ORDER_KIND_PRESALE);
    assert_int_equal(env->order_created->n_items, 0);
    assert_non_null(env->order_created->buyer);
    char *out = kf_json_dump_event(env);
    assert_non_null(strstr(out, "\"buyer\":{},\"total_fen\":100,\"kind\":\"presale\"}"));
    free(out);
    kf_env_free(env);
}

/* What comes from the wire may hold values JSON input never produces. */
static void test_output_of_odd_values(void **state)
{
    (void)state;
    Kefu__V1__Envelope env = KEFU__V1__ENVELOPE__INIT;
    Kefu__V1__ActionTask task = KEFU__V1__ACTION_TASK__INIT;
    env.topic = "action.task";
    env.has_seq = 1;
    env.seq = UINT64_MAX;
    env.has_occurred_at = 1;
    env.occurred_at = INT64_MAX; /* not a printable date: stays epoch ms */
    env.payload_case = KEFU__V1__ENVELOPE__PAYLOAD_ACTION_TASK;
    env.action_task = &task;
    task.task_id = "t\xFFx";
    task.has_severity = 1;
    task.severity = 99; /* a value from a newer contract */
    task.has_due_at = 1;
    task.due_at = -1;
    char *out = kf_json_dump_event(&env);
    assert_string_equal(out, "{\"topic\":\"action.task\",\"occurred_at\":9223372036854775807,"
                             "\"seq\":1.8446744073709552e19,\"task_id\":\"t\xEF\xBF\xBDx\","
                             "\"due_at\":\"1970-01-01T07:59:59.999+08:00\",\"severity\":99}");
    free(out);
    task.severity = KEFU__V1__SEVERITY__SEVERITY_UNSPECIFIED;
    out = kf_json_dump_event(&env);
    assert_null(strstr(out, "severity"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_topic),
        cmocka_unit_test(test_decoded_values),
        cmocka_unit_test(test_same_instant),
        cmocka_unit_test(test_output_offset),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_lenient_numbers),
        cmocka_unit_test(test_output_of_odd_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
