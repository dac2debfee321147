"""Builds models/corpus/ad_copy.jsonl: bilingual ad copy from hand-written phrase banks and templates."""

from __future__ import annotations

import json
import random
from typing import NamedTuple

from models.corpus import ad_copy_path


class Bank(NamedTuple):
    """Phrases for one product category in one language; templates draw one of each."""

    names: list[str]      # product names (EN: used after "the")
    features: list[str]   # EN: noun phrases ("a ..."); ZH: short descriptive clauses
    benefits: list[str]   # EN: bare verb phrases ("stay warm"); ZH: phrases that follow 让你/想要/从此
    audiences: list[str]  # EN: plural noun phrases; ZH: noun phrases that precede 的/打造
    ctas: list[str]       # calls to action, without final punctuation


LANGS = ("en", "zh")

# Every English template starts with fixed text, so no capitalisation is needed.
TEMPLATES = {
    "en": [
        "The {name} comes with {feature}, so you can {benefit}. {cta}.",
        "Made for {audience}: the {name}, with {feature}. {cta}.",
        "Want to {benefit}? Try the {name}, with {feature}. {cta}.",
        "The {name}: {feature}. Perfect for {audience} who want to {benefit}.",
        "Meet the {name}. With {feature}, it helps you {benefit}. {cta}.",
        "Calling all {audience}: the {name} helps you {benefit}. {cta}.",
        "Looking for a way to {benefit}? The {name} has {feature}. {cta}.",
    ],
    "zh": [
        "{name}，{feature}，让你{benefit}。{cta}！",
        "专为{audience}打造：{name}，{feature}。{cta}！",
        "想要{benefit}？试试{name}，{feature}。{cta}！",
        "{audience}的理想之选！{name}，{feature}，帮你{benefit}。",
        "新品上市：{name}。{feature}，从此{benefit}。{cta}！",
        "{audience}都爱的{name}，{feature}。{cta}！",
    ],
}

MAX_CHARS = {"en": 160, "zh": 80}  # every line is strictly shorter
PER_CATEGORY = 63                  # lines per category per language: 24 x 2 x 63 = 3,024
MAX_TRIES = 5000                   # draws per category and language before giving up

CATEGORIES: dict[str, dict[str, Bank]] = {
    "coffee": {
        "en": Bank(
            names=["Ember Roast Espresso Blend", "Morning Ritual House Blend",
                   "Highland Single Origin Roast", "Velvet Cold Brew Blend"],
            features=["beans roasted in small batches every week", "rich notes of dark chocolate and caramel",
                      "a smooth finish with low acidity", "beans sourced directly from family farms",
                      "a resealable bag that keeps every scoop fresh", "whole beans or ground, just as you like"],
            benefits=["start every morning on the right foot", "enjoy cafe-quality coffee at home",
                      "skip the long line at the coffee shop", "stay sharp through busy afternoons",
                      "turn a quiet morning into a small ritual"],
            audiences=["early risers", "busy commuters", "home baristas", "remote workers", "coffee lovers"],
            ctas=["Order a bag today", "Subscribe and save 15% on every delivery",
                  "Try a sample pack for free", "Add it to your cart now"],
        ),
        "zh": Bank(
            names=["晨光深烘咖啡豆", "山谷单品手冲豆", "丝绒冷萃拼配豆", "经典意式拼配豆"],
            features=["每周小批量新鲜烘焙", "带有黑巧克力和焦糖的醇厚风味", "口感顺滑，酸度柔和",
                      "咖啡豆直采自云南庄园", "独立密封包装，每一勺都新鲜", "手冲、法压和意式机都适用"],
            benefits=["每天早上都精神满满", "在家也能喝到咖啡馆水准的好咖啡", "告别排队买咖啡的烦恼",
                      "午后也能保持专注", "把平凡的早晨变成小小的仪式"],
            audiences=["早起的上班族", "通勤路上的打工人", "居家咖啡爱好者", "远程办公族", "精品咖啡迷"],
            ctas=["立即下单，尝鲜价仅需39元", "订阅每月配送，立享八五折", "免费领取试饮装", "现在就加入购物车"],
        ),
    },
    "running_shoes": {
        "en": Bank(
            names=["Stride Pro Road Runner", "Trailblazer X Trail Shoe", "Cloudstep Daily Trainer",
                   "Swift Lite Racing Flat"],
            features=["a responsive foam midsole", "a breathable knit upper",
                      "a grippy rubber outsole for wet roads", "a heel that locks your foot in place",
                      "a featherlight build of just 220 grams", "reflective details for early morning runs"],
            benefits=["run farther with less fatigue", "set a new personal best",
                      "stay comfortable from the first mile to the last", "keep your feet cool on hot days",
                      "recover faster after long runs"],
            audiences=["marathon runners", "weekend joggers", "trail lovers", "first-time runners",
                       "city walkers"],
            ctas=["Find your size today", "Shop the new colors now", "Order now with free returns",
                  "Get 20% off your first pair"],
        ),
        "zh": Bank(
            names=["疾风竞速跑鞋", "云步日常训练鞋", "越野先锋登山跑鞋", "轻燕缓震跑鞋"],
            features=["高回弹中底，每一步都有力", "透气针织鞋面", "防滑橡胶大底，雨天也抓地",
                      "后跟稳稳包裹双脚", "单只仅重220克", "反光设计，夜跑更安心"],
            benefits=["跑得更远也不觉得累", "刷新个人最好成绩", "从第一公里舒适到最后一公里",
                      "炎炎夏日也保持双脚清爽", "长跑后恢复得更快"],
            audiences=["马拉松跑者", "周末慢跑族", "越野跑爱好者", "刚开始跑步的新手", "每天步行通勤的人"],
            ctas=["立即选购你的尺码", "新配色已上架，快来选购", "下单即享免费退换", "首双立减20%"],
        ),
    },
    "skincare": {
        "en": Bank(
            names=["Dew Drop Hydrating Serum", "Pure Calm Night Cream", "Glow Daily Vitamin C Essence",
                   "Silk Touch Gentle Cleanser"],
            features=["hyaluronic acid for deep moisture", "a light texture that absorbs in seconds",
                      "a gentle formula with no added fragrance", "plant extracts that calm redness",
                      "vitamin C for a brighter tone", "a formula tested by dermatologists"],
            benefits=["wake up to soft, glowing skin", "keep dry patches away all day",
                      "feel fresh without a greasy finish", "build a simple routine you can stick to",
                      "look rested even after a long week"],
            audiences=["people with sensitive skin", "busy professionals", "skincare beginners",
                       "students on a budget", "night owls"],
            ctas=["Shop the full routine now", "Get a free travel size with every order",
                  "Try it risk-free for 30 days", "Order today and glow tomorrow"],
        ),
        "zh": Bank(
            names=["水润玻尿酸精华", "安肌修护晚霜", "焕亮维C精华液", "柔肤氨基酸洁面乳"],
            features=["添加玻尿酸，深层补水", "质地轻薄，秒速吸收", "温和配方，无添加香精",
                      "植物精粹舒缓泛红", "维C成分，提亮肤色", "经皮肤科医生测试"],
            benefits=["一觉醒来肌肤水润透亮", "全天告别干燥起皮", "享受清爽不油腻的肤感",
                      "轻松坚持简单的护肤步骤", "熬夜之后也气色好"],
            audiences=["敏感肌人群", "忙碌的职场人", "护肤新手", "预算有限的学生党", "经常熬夜的夜猫子"],
            ctas=["立即选购全套护理", "下单即送旅行装", "30天无忧试用", "今天下单，明天焕亮"],
        ),
    },
    "headphones": {
        "en": Bank(
            names=["Echo Pro Wireless Earbud Set", "Studio Max Over-Ear Headset", "Pulse Sport Neckband",
                   "Quiet Zone Noise Cancelling Headset"],
            features=["active noise cancelling", "up to 40 hours of battery life", "deep bass with crisp highs",
                      "soft, comfortable ear cushions", "a sweat-resistant design", "fast charging over USB-C"],
            benefits=["focus in a noisy office", "enjoy your playlist on long flights",
                      "take calls with crystal-clear sound", "get lost in your favorite albums",
                      "train hard without losing an earbud"],
            audiences=["frequent flyers", "music lovers", "gym regulars", "open-office workers", "students"],
            ctas=["Order now and get free shipping", "Hear the difference today", "Save 25% this week only",
                  "Pick your color now"],
        ),
        "zh": Bank(
            names=["回声无线降噪耳机", "录音室头戴式耳机", "律动运动耳机", "静界主动降噪耳机"],
            features=["主动降噪，一键隔绝喧嚣", "续航长达40小时", "低音深沉，高音清澈",
                      "记忆海绵耳垫，久戴不累", "防汗防水设计", "支持USB-C快充"],
            benefits=["在嘈杂的办公室也能专注工作", "长途飞行也能享受音乐", "通话时声音清晰不失真",
                      "沉浸在最爱的专辑里", "运动时耳机稳稳不掉"],
            audiences=["经常出差的商旅人士", "音乐发烧友", "健身房常客", "开放式办公的上班族", "学生党"],
            ctas=["立即下单，全国包邮", "马上体验好声音", "本周限时75折", "快来挑选你喜欢的颜色"],
        ),
    },
    "tea": {
        "en": Bank(
            names=["Jade Mountain Oolong", "Silver Needle White Tea", "Morning Mist Green Tea",
                   "Golden Harvest Black Tea"],
            features=["leaves hand-picked in high mountain gardens", "a floral aroma with a sweet finish",
                      "whole leaves that brew again and again", "a smooth taste that needs no sugar",
                      "a gentle lift without the coffee jitters", "a tin that keeps the leaves fresh"],
            benefits=["slow down and enjoy a quiet moment", "warm up on cold afternoons",
                      "share a good pot with friends", "unwind after a long day",
                      "swap sugary drinks for something better"],
            audiences=["tea lovers", "office workers", "students in exam season", "health-minded families",
                       "gift shoppers"],
            ctas=["Order a tin today", "Try our tasting set", "Get free shipping on two tins or more",
                  "Gift it to someone you love"],
        ),
        "zh": Bank(
            names=["高山乌龙茶", "白毫银针", "明前龙井", "金骏眉红茶"],
            features=["高山茶园手工采摘", "花香馥郁，回甘悠长", "整叶冲泡，耐泡七八次",
                      "入口甘醇，无需加糖", "提神醒脑又不心慌", "铁罐密封，茶叶持久鲜香"],
            benefits=["放慢脚步，享受片刻宁静", "在寒冷的午后暖身暖心", "和朋友围坐共享一壶好茶",
                      "忙碌一天后好好放松", "告别含糖饮料"],
            audiences=["爱茶之人", "办公室白领", "备考的学生", "注重养生的家庭", "送礼人士"],
            ctas=["立即下单，尝一口春天的味道", "先来一份品鉴装", "满两罐包邮", "送给你在乎的人"],
        ),
    },
    "backpacks": {
        "en": Bank(
            names=["Metro Commuter Backpack", "Summit 30L Hiking Pack", "Campus Daypack", "Nomad Travel Backpack"],
            features=["a padded sleeve for a 16-inch laptop", "water-resistant recycled fabric",
                      "a hidden pocket for your passport", "breathable shoulder straps",
                      "a clamshell opening that packs like a suitcase", "a lifetime warranty"],
            benefits=["carry everything you need in one bag", "stay organized on the go",
                      "keep your gear dry in sudden rain", "travel light on weekend trips",
                      "walk all day without sore shoulders"],
            audiences=["daily commuters", "college students", "weekend hikers", "digital nomads",
                       "frequent travelers"],
            ctas=["Shop the collection now", "Order today and ship free", "Choose your color now",
                  "Get 15% off your first order"],
        ),
        "zh": Bank(
            names=["都市通勤双肩包", "登峰30升徒步包", "校园轻便背包", "旅行者多功能背包"],
            features=["加厚隔层，可放16英寸笔记本", "环保防泼水面料", "隐藏式防盗口袋", "透气减压肩带",
                      "全开口设计，像行李箱一样好收纳", "终身质保"],
            benefits=["一个包装下所有必需品", "出门在外也井井有条", "突遇大雨装备也不湿",
                      "周末出游轻装上阵", "背一整天肩膀也不酸"],
            audiences=["每天通勤的上班族", "大学生", "周末徒步爱好者", "数字游民", "经常旅行的人"],
            ctas=["立即选购全系列", "今日下单，免费配送", "快来挑选你的颜色", "新用户首单立减15%"],
        ),
    },
    "smart_watches": {
        "en": Bank(
            names=["Pulse One Smart Watch", "Vita Fit Tracker Watch", "Orbit GPS Sports Watch",
                   "Halo Classic Smart Watch"],
            features=["all-day heart rate and sleep tracking", "a bright always-on display",
                      "built-in GPS for runs and rides", "up to 14 days of battery life",
                      "water resistance down to 50 meters", "contactless payments on your wrist"],
            benefits=["understand your body better", "hit your daily step goal",
                      "leave your phone at home on runs", "never miss an important message",
                      "sleep better with simple insights"],
            audiences=["fitness fans", "busy parents", "swimmers and cyclists", "tech lovers",
                       "health-minded beginners"],
            ctas=["Order yours today", "Trade in your old watch and save", "Shop the new bands now",
                  "Get free engraving this month"],
        ),
        "zh": Bank(
            names=["脉动智能手表", "活力健康手环表", "轨迹GPS运动手表", "光环经典智能手表"],
            features=["全天候心率与睡眠监测", "高清常亮显示屏", "内置GPS，跑步骑行精准记录",
                      "续航长达14天", "50米防水", "抬腕即可刷卡支付"],
            benefits=["更了解自己的身体", "轻松完成每日步数目标", "跑步时不用再带手机",
                      "不错过任何重要消息", "睡得更好，精力更足"],
            audiences=["健身达人", "忙碌的爸爸妈妈", "游泳和骑行爱好者", "数码控", "想养成健康习惯的人"],
            ctas=["立即抢购", "以旧换新，立省更多", "新款表带现已上架", "本月下单免费刻字"],
        ),
    },
    "yoga_mats": {
        "en": Bank(
            names=["Lotus Grip Yoga Mat", "Balance Pro Cork Mat", "Travel Fold Yoga Mat", "Zen Cushion Thick Mat"],
            features=["a non-slip surface that grips even when you sweat", "natural cork and rubber",
                      "6 mm of joint-friendly cushioning", "alignment lines printed on top",
                      "a light design that folds into your bag", "a free carry strap"],
            benefits=["hold every pose with confidence", "protect your knees and wrists",
                      "practice anywhere you go", "build a calm daily routine",
                      "feel steady from warm-up to cool-down"],
            audiences=["yoga beginners", "hot yoga fans", "pilates lovers", "home workout fans", "travelers"],
            ctas=["Roll out yours today", "Order now with free shipping", "Pick your favorite color",
                  "Save 20% on your first mat"],
        ),
        "zh": Bank(
            names=["莲花防滑瑜伽垫", "平衡软木瑜伽垫", "旅行折叠瑜伽垫", "禅意加厚瑜伽垫"],
            features=["防滑表面，出汗也不打滑", "天然软木与橡胶材质", "6毫米加厚缓冲，保护关节",
                      "印有体式对齐线", "轻薄可折叠，放进包里就能走", "附赠便携背带"],
            benefits=["每个体式都稳稳当当", "保护膝盖和手腕", "随时随地开始练习", "养成平静的日常习惯",
                      "从热身到放松都稳定舒适"],
            audiences=["瑜伽新手", "热瑜伽爱好者", "普拉提爱好者", "居家健身的人", "喜欢旅行的人"],
            ctas=["立即入手", "下单即享包邮", "挑选你喜欢的颜色", "首单立享八折"],
        ),
    },
    "kitchen_knives": {
        "en": Bank(
            names=["Kaze Chef Knife", "Steel Edge Santoku", "Home Cook Three-Piece Set", "Artisan Bread Knife"],
            features=["a blade forged from high-carbon steel", "a razor-sharp edge that lasts",
                      "a balanced handle that fits your hand", "a full tang for extra strength",
                      "a stain-resistant finish", "a wooden block for safe storage"],
            benefits=["slice tomatoes in one clean cut", "prep dinner in half the time", "cook like a pro at home",
                      "fall in love with cooking again", "chop vegetables with less effort"],
            audiences=["home cooks", "aspiring chefs", "busy families", "food lovers", "newlyweds"],
            ctas=["Upgrade your kitchen today", "Order now with free sharpening for life",
                  "Shop the full set now", "Give it as a housewarming gift"],
        ),
        "zh": Bank(
            names=["风斩主厨刀", "精钢三德刀", "家常厨具三件套", "匠心面包刀"],
            features=["高碳钢锻造刀身", "刀刃锋利持久", "手柄贴合掌心，重心平衡",
                      "全龙骨结构，更结实耐用", "防锈抗污", "配有实木刀座，收纳更安全"],
            benefits=["一刀切开番茄不挤汁", "把备菜时间缩短一半", "在家也能像大厨一样下厨",
                      "重新爱上做饭", "切菜更省力"],
            audiences=["爱下厨的人", "厨房新手", "忙碌的小家庭", "美食爱好者", "新婚夫妻"],
            ctas=["现在就升级你的厨房", "下单即享终身免费磨刀", "立即选购全套刀具", "送给乔迁新居的朋友"],
        ),
    },
    "pet_food": {
        "en": Bank(
            names=["Prairie Feast Salmon Recipe", "Happy Paws Chicken Recipe", "Garden Harvest Turkey Recipe",
                   "Golden Bowl Lamb and Rice"],
            features=["real meat as the first ingredient", "no corn, wheat or soy",
                      "omega oils for a shiny coat", "small kibble that is easy to chew",
                      "probiotics for healthy digestion", "recipes made with vets"],
            benefits=["keep your pet happy and healthy", "see a shinier coat in weeks",
                      "make every meal worth a wag", "support healthy digestion",
                      "keep your pet at a healthy weight"],
            audiences=["dog owners", "cat parents", "first-time pet owners", "multi-pet households",
                       "owners of picky eaters"],
            ctas=["Order a trial bag today", "Subscribe and save 10%", "Get a free scoop with every bag",
                  "Try it risk-free"],
        ),
        "zh": Bank(
            names=["草原盛宴三文鱼配方粮", "快乐爪鸡肉配方粮", "田园火鸡配方粮", "金碗羊肉糙米粮"],
            features=["第一配料是真材实肉", "无玉米、小麦和大豆", "添加Omega脂肪酸，毛发更亮泽",
                      "小颗粒，好咀嚼", "添加益生菌，呵护肠胃", "兽医参与研发配方"],
            benefits=["养出健康快乐的毛孩子", "几周内看到毛发更亮泽", "告别毛孩子挑食的烦恼",
                      "轻松呵护宠物肠胃", "帮毛孩子保持理想体重"],
            audiences=["养狗家庭", "猫奴", "第一次养宠物的新手", "多宠家庭", "宠物挑食的主人"],
            ctas=["立即下单试吃装", "订阅配送立享九折", "每袋附赠量勺", "不爱吃包退"],
        ),
    },
    "baby_strollers": {
        "en": Bank(
            names=["Cloud Nine Stroller", "City Glide Compact Stroller", "Little Explorer All-Terrain Stroller",
                   "Breeze Travel Stroller"],
            features=["a one-hand fold that fits in any trunk", "all-wheel suspension for bumpy paths",
                      "a seat that lies flat for naps", "a large storage basket", "a sun canopy with UPF 50+",
                      "a frame that weighs only 6 kg"],
            benefits=["run errands without the struggle", "keep your baby comfy on every walk",
                      "travel light on family trips", "let your little one nap on the go",
                      "get out of the house with less stress"],
            audiences=["new parents", "city families", "grandparents", "busy moms and dads", "traveling families"],
            ctas=["Test drive one in store", "Order now with free delivery",
                  "Join our baby club and save", "Shop the new colors now"],
        ),
        "zh": Bank(
            names=["云朵轻便婴儿车", "城市一键折叠推车", "小探险家全地形推车", "微风旅行推车"],
            features=["单手一键收车，轻松放进后备箱", "四轮避震，坑洼路面也平稳", "座椅可平躺，宝宝随时睡",
                      "超大储物篮", "UPF50+防晒遮阳篷", "车身仅重6公斤"],
            benefits=["带娃出门办事不再手忙脚乱", "带宝宝舒舒服服地散步", "全家出游轻装上阵",
                      "随时随地哄娃午睡", "轻松出门遛娃"],
            audiences=["新手爸妈", "城市家庭", "帮忙带娃的爷爷奶奶", "二胎家庭", "爱旅行的家庭"],
            ctas=["欢迎到店试推", "立即下单，免费送货上门", "加入会员享专属优惠", "新配色现已上市"],
        ),
    },
    "laptops": {
        "en": Bank(
            names=["Nova Air 14 Laptop", "Titan Pro 16 Workstation", "Spark 13 Everyday Notebook",
                   "Flex 2-in-1 Convertible"],
            features=["a battery that lasts all day", "a crisp 2.8K display", "a quiet backlit keyboard",
                      "a slim body that slips into any bag", "a fast SSD that boots in seconds",
                      "a sharp webcam for clear video calls"],
            benefits=["work from anywhere", "edit photos and video without lag", "take notes in every lecture",
                      "get through your to-do list faster", "stream shows in sharp detail"],
            audiences=["students", "creative professionals", "remote teams", "small business owners",
                       "frequent travelers"],
            ctas=["Configure yours today", "Get free shipping and a free sleeve", "Save with student pricing",
                  "Order now and pay monthly"],
        ),
        "zh": Bank(
            names=["新星Air 14轻薄本", "泰坦Pro 16高性能本", "星火13日常笔记本", "灵动二合一翻转本"],
            features=["续航长达一整天", "2.8K高清屏幕，细节锐利", "背光键盘，安静舒适", "机身轻薄，随手放进包里",
                      "高速固态硬盘，秒速开机", "高清摄像头，视频会议更清晰"],
            benefits=["随时随地高效办公", "修图剪视频不卡顿", "每节课都能轻松记笔记", "更快完成待办清单",
                      "追剧也能享受清晰画质"],
            audiences=["大学生", "设计师和创作者", "远程办公族", "小企业主", "经常出差的人"],
            ctas=["立即定制你的配置", "下单送电脑内胆包", "学生认证享专属优惠", "支持分期免息"],
        ),
    },
    "bicycles": {
        "en": Bank(
            names=["Urban Glide City Bike", "Ridge Runner Mountain Bike", "Swift Road Carbon Bike", "Volt E-Bike"],
            features=["a lightweight aluminum frame", "smooth 21-speed gears", "hydraulic disc brakes",
                      "a pedal-assist motor with an 80 km range", "puncture-resistant tires",
                      "a comfortable upright seat"],
            benefits=["beat traffic on your way to work", "explore new trails on weekends",
                      "climb hills without breaking a sweat", "save money on gas and parking",
                      "get fit while having fun"],
            audiences=["city commuters", "mountain bikers", "weekend riders", "students", "active families"],
            ctas=["Book a test ride today", "Order now with free assembly", "Save 10% on a helmet with any bike",
                  "Find your frame size now"],
        ),
        "zh": Bank(
            names=["都市轻骑城市车", "山脊越野山地车", "疾风碳纤维公路车", "伏特电助力自行车"],
            features=["轻量铝合金车架", "21速变速，换挡顺滑", "液压碟刹，刹车灵敏", "电助力续航80公里",
                      "防扎轮胎", "舒适直立坐姿"],
            benefits=["上班路上不再堵车", "周末探索新的骑行路线", "爬坡也不费力", "省下油费和停车费",
                      "边玩边锻炼身体"],
            audiences=["城市通勤族", "山地车爱好者", "周末骑行党", "学生", "亲子家庭"],
            ctas=["立即预约试骑", "下单免费组装", "购车加购头盔享九折", "快来找到适合你的尺寸"],
        ),
    },
    "sunscreen": {
        "en": Bank(
            names=["Sun Shield SPF 50 Lotion", "Daily Veil SPF 30 Fluid", "Beach Day Sport Spray",
                   "Tiny Sun Gentle Sunscreen"],
            features=["broad-spectrum SPF 50 protection", "a light texture with no white cast",
                      "water resistance for up to 80 minutes", "reef-friendly mineral filters",
                      "a formula gentle enough for kids", "a non-greasy finish"],
            benefits=["enjoy the sun without the burn", "wear it every day under makeup",
                      "swim and play worry-free", "protect your skin from early aging", "reapply in seconds"],
            audiences=["beach lovers", "outdoor athletes", "families with kids", "daily commuters",
                       "people with fair skin"],
            ctas=["Stock up for summer now", "Buy two and get one free", "Order today and ship free",
                  "Grab a travel size for your bag"],
        ),
        "zh": Bank(
            names=["日盾SPF50防晒乳", "轻透SPF30防晒液", "海边运动防晒喷雾", "小太阳温和防晒霜"],
            features=["SPF50广谱防护", "质地轻薄，不泛白", "防水防汗长达80分钟", "物理防晒，海洋友好",
                      "配方温和，孩子也能用", "清爽不黏腻"],
            benefits=["尽情享受阳光不怕晒伤", "每天妆前轻松使用", "游泳玩水无后顾之忧", "预防光老化",
                      "几秒钟就能补涂"],
            audiences=["海边度假党", "户外运动爱好者", "有娃家庭", "每天通勤的上班族", "容易晒红的白皮肤人群"],
            ctas=["立即囤货迎接夏天", "买二送一", "今日下单包邮", "顺手带一支旅行装"],
        ),
    },
    "candles": {
        "en": Bank(
            names=["Fireside Cedar Candle", "Lavender Dream Soy Candle", "Fresh Linen Jar Candle",
                   "Vanilla Hearth Candle"],
            features=["natural soy wax that burns clean", "a cotton wick with no soot",
                      "up to 50 hours of burn time", "a hand-poured glass jar",
                      "a scent blended with essential oils", "a jar you can reuse when the wax is gone"],
            benefits=["make your home feel warm and cozy", "unwind after a long day",
                      "set the mood for a quiet dinner", "fill a room with a gentle scent",
                      "turn bath time into a spa night"],
            audiences=["homebodies", "gift shoppers", "busy moms", "couples", "book lovers"],
            ctas=["Light one up tonight", "Buy three and save 20%", "Gift one to a friend",
                  "Shop new seasonal scents"],
        ),
        "zh": Bank(
            names=["壁炉雪松香薰蜡烛", "薰衣草之梦大豆蜡烛", "清新棉麻香氛蜡烛", "香草暖炉蜡烛"],
            features=["天然大豆蜡，燃烧干净", "棉芯无黑烟", "燃烧时长可达50小时", "手工灌注玻璃杯",
                      "融合精油调香", "用完后杯子还能再利用"],
            benefits=["把家布置得温暖又惬意", "忙碌一天后好好放松", "为烛光晚餐营造氛围",
                      "在房间里享受淡淡香气", "把泡澡时光变成居家SPA"],
            audiences=["宅家爱好者", "送礼人士", "忙碌的妈妈们", "热恋中的情侣", "爱读书的人"],
            ctas=["今晚就点亮一支", "任选三支享八折", "送一支给好朋友", "当季新香现已上架"],
        ),
    },
    "furniture": {
        "en": Bank(
            names=["Nordic Oak Dining Table", "Cloud Comfort Sofa", "Loft Storage Bookshelf",
                   "Linen Lounge Armchair"],
            features=["solid wood from sustainable forests", "a frame that assembles in 15 minutes",
                      "a stain-resistant finish", "a minimalist design that fits any room",
                      "rounded corners that are safe for kids", "a 10-year warranty"],
            benefits=["make a small space feel bigger", "host family dinners in style",
                      "relax after work in real comfort", "keep your living room tidy",
                      "create a home you love coming back to"],
            audiences=["first-time homeowners", "apartment renters", "growing families", "design lovers",
                       "pet owners"],
            ctas=["Visit our showroom this weekend", "Order now with free delivery",
                  "Pay in 12 interest-free installments", "Shop the collection today"],
        ),
        "zh": Bank(
            names=["北欧橡木餐桌", "云朵舒适沙发", "阁楼收纳书架", "亚麻休闲单人椅"],
            features=["选用可持续林场的实木", "15分钟就能组装好", "防污耐脏，好打理", "极简设计，百搭任何空间",
                      "圆角设计，孩子磕碰也不怕", "十年质保"],
            benefits=["把小空间变得更宽敞", "体面地招待家人聚餐", "下班后真正舒服地放松",
                      "保持客厅整洁清爽", "打造一个想回的家"],
            audiences=["第一次买房的人", "租房青年", "有孩子的家庭", "家居设计控", "养宠物的家庭"],
            ctas=["本周末欢迎到展厅体验", "立即下单，免费送货", "支持12期免息分期", "立即选购全系列"],
        ),
    },
    "toys": {
        "en": Bank(
            names=["Tiny Builders Block Set", "Star Racer Remote Car", "Cuddle Bear Plush",
                   "Little Scientist Lab Kit"],
            features=["safe, non-toxic materials", "rounded edges for little hands",
                      "bright colors that spark imagination", "sturdy parts that survive rough play",
                      "a storage box for easy cleanup", "a gift-ready box"],
            benefits=["learn through play", "keep kids busy without screens",
                      "build confidence one project at a time", "spend more quality time as a family",
                      "make every birthday a little brighter"],
            audiences=["toddlers", "curious kids", "busy parents", "gift-giving grandparents", "teachers"],
            ctas=["Order now for next-day delivery", "Shop gifts by age", "Save 15% on bundles",
                  "Add it to your gift list"],
        ),
        "zh": Bank(
            names=["小小建筑师积木套装", "星际赛车遥控车", "抱抱熊毛绒公仔", "小小科学家实验套装"],
            features=["安全无毒环保材质", "圆角设计，保护小手", "色彩缤纷，激发想象力", "结实耐玩，不怕摔",
                      "附带收纳盒，玩完好整理", "精美礼盒包装"],
            benefits=["在玩耍中学习", "远离屏幕也玩得开心", "一步步建立自信", "多陪伴家人，共度亲子时光",
                      "把每个生日过得更难忘"],
            audiences=["学龄前宝宝", "好奇心满满的孩子", "忙碌的家长", "给孙辈挑礼物的长辈", "幼儿园老师"],
            ctas=["立即下单，次日送达", "按年龄挑选礼物", "组合购买立享85折", "加入你的礼物清单"],
        ),
    },
    "books": {
        "en": Bank(
            names=["Quiet Garden Hardcover", "Harbor Lights Paperback", "Northern Star Trilogy Box Set",
                   "Summer Letters Novel"],
            features=["a story readers cannot put down", "short chapters for busy evenings",
                      "a beautiful cloth-bound cover", "a free audiobook download",
                      "a bonus chapter from the author", "book club questions at the back"],
            benefits=["escape into a new world every night", "build a bedtime reading habit",
                      "read more and scroll less", "find your next favorite author",
                      "spend a long weekend with a great story"],
            audiences=["book club members", "mystery fans", "train commuters", "young professionals",
                       "lifelong readers"],
            ctas=["Order your copy today", "Get free shipping on two books", "Read a free chapter now",
                  "Pre-order the signed edition"],
        ),
        "zh": Bank(
            names=["《静谧花园》精装版", "《港湾灯火》平装本", "《北极星》三部曲套装", "《夏日来信》长篇小说"],
            features=["故事精彩，让人爱不释手", "章节短小，睡前读正好", "布面精装，适合收藏", "附赠有声书",
                      "收录作者番外篇", "书末附读书会讨论题"],
            benefits=["每晚沉浸在一个新世界", "养成睡前阅读的好习惯", "少刷手机，多读好书",
                      "找到下一位喜欢的作家", "用一个好故事度过周末"],
            audiences=["读书会成员", "悬疑小说迷", "地铁通勤族", "职场新人", "爱读书的人"],
            ctas=["立即下单", "任选两本包邮", "免费试读第一章", "预订作者签名版"],
        ),
    },
    "luggage": {
        "en": Bank(
            names=["Voyager Carry-On Spinner", "Jetset 28-Inch Checked Case", "Metro 24-Inch Spinner",
                   "Aero Ultralight Suitcase"],
            features=["a tough polycarbonate shell", "four silent spinner wheels", "a built-in TSA-approved lock",
                      "an expandable zip for extra room", "a USB port to charge your phone",
                      "a frame that weighs only 2.3 kg"],
            benefits=["breeze through the airport", "pack more without paying extra fees",
                      "keep your belongings safe on every trip", "travel in style for years to come",
                      "make weekend getaways easy"],
            audiences=["business travelers", "backpacking couples", "families on vacation", "frequent flyers",
                       "students studying abroad"],
            ctas=["Pack smarter today", "Order now with a 10-year warranty", "Save 20% on matching sets",
                  "Shop the travel sale now"],
        ),
        "zh": Bank(
            names=["远航登机箱", "环球28寸托运箱", "都市24寸旅行箱", "轻羽超轻行李箱"],
            features=["坚固耐摔的PC硬壳", "四个静音万向轮", "内置TSA海关锁", "可扩展拉链，多装一点",
                      "自带USB充电口", "箱体仅重2.3公斤"],
            benefits=["在机场来去自如", "多装行李不用额外付费", "每次旅行都安心保管随身物品",
                      "多年出行依旧体面有型", "周末说走就走"],
            audiences=["商务出差人士", "背包旅行的情侣", "出游的家庭", "经常坐飞机的人", "留学生"],
            ctas=["立即换上更聪明的行李箱", "下单享十年质保", "套装购买立享八折", "旅行季特惠进行中"],
        ),
    },
    "electric_toothbrushes": {
        "en": Bank(
            names=["Sonic Clean Pro Toothbrush", "Bright Smile Electric Brush", "Travel Mini Sonic Brush",
                   "Smart Timer Sonic Brush"],
            features=["40,000 sonic strokes per minute", "a two-minute timer with 30-second alerts",
                      "a pressure sensor that protects your gums", "a battery that lasts up to 30 days",
                      "soft bristles for sensitive teeth", "a slim travel case"],
            benefits=["get a dentist-clean feeling every day", "remove more plaque than a manual brush",
                      "brush for the full two minutes", "keep your smile bright",
                      "make brushing fun for the whole family"],
            audiences=["coffee drinkers", "people with sensitive gums", "busy families", "frequent travelers",
                       "young brushers"],
            ctas=["Order now and get a free brush head", "Subscribe to brush head refills",
                  "Save 30% this week", "Upgrade your routine today"],
        ),
        "zh": Bank(
            names=["声波净白电动牙刷", "亮白微笑电动牙刷", "旅行迷你声波牙刷", "智能计时声波牙刷"],
            features=["每分钟四万次声波振动", "两分钟智能计时，每30秒提醒换区", "压力感应，保护牙龈",
                      "一次充电用30天", "软毛刷头，敏感牙齿也适用", "附赠轻薄旅行盒"],
            benefits=["每天都有刚洗完牙的清爽感", "比手动牙刷清除更多牙菌斑", "每次都刷满两分钟",
                      "保持笑容亮白", "全家都爱上刷牙"],
            audiences=["爱喝咖啡的人", "牙龈敏感的人", "忙碌的家庭", "经常出差的人", "不爱刷牙的小朋友"],
            ctas=["立即下单加赠刷头", "订阅刷头定期配送", "本周限时七折", "现在就升级你的刷牙方式"],
        ),
    },
    "gaming_chairs": {
        "en": Bank(
            names=["Apex Pro Gaming Chair", "Titan XL Racing Seat", "Nova Mesh Gaming Chair",
                   "Phantom Recliner Chair"],
            features=["adjustable lumbar and neck pillows", "4D armrests", "a recline of up to 165 degrees",
                      "breathable mesh that stays cool", "a steel frame rated for 150 kg",
                      "cold-cure foam that keeps its shape"],
            benefits=["game for hours without back pain", "sit better through long work days",
                      "stay cool in heated matches", "take a quick break with a full recline",
                      "level up your setup"],
            audiences=["PC gamers", "streamers", "console players", "home office workers", "programmers"],
            ctas=["Order now with free shipping", "Save 15% during launch week", "Pick your color today",
                  "Build your dream setup now"],
        ),
        "zh": Bank(
            names=["巅峰电竞椅", "泰坦加大赛车椅", "新星网布电竞椅", "幻影可躺电竞椅"],
            features=["腰枕头枕可调节", "4D扶手", "最大可后仰165度", "透气网布，久坐不闷热",
                      "钢制骨架，承重150公斤", "冷发泡海绵，久坐不变形"],
            benefits=["连续开黑几个小时也不腰疼", "长时间办公坐姿更健康", "激烈对局中也保持凉爽",
                      "随时躺下小憩一会儿", "打造更专业的游戏桌面"],
            audiences=["电脑游戏玩家", "游戏主播", "主机玩家", "居家办公的人", "程序员"],
            ctas=["立即下单，包邮到家", "新品首发周立减15%", "快来挑选你的配色", "现在就打造梦想桌面"],
        ),
    },
    "phone_cases": {
        "en": Bank(
            names=["Armor Shield Case", "Clear View Slim Case", "Eco Leaf Biodegradable Case", "MagGrip Wallet Case"],
            features=["drop protection up to 3 meters", "raised edges that guard the screen and camera",
                      "a slim profile that fits any pocket", "plant-based material that breaks down naturally",
                      "a built-in card slot", "magnets that snap onto wireless chargers"],
            benefits=["drop your phone without panic", "show off the original color of your phone",
                      "carry your cards and phone together", "keep your phone looking new for longer",
                      "shop green without giving up protection"],
            audiences=["accident-prone phone owners", "outdoor adventurers", "minimalists", "eco-minded shoppers",
                       "busy parents"],
            ctas=["Find a case for your model", "Buy one, get one 50% off", "Order today and ship free",
                  "Shop new colors now"],
        ),
        "zh": Bank(
            names=["铠甲防摔手机壳", "透视超薄手机壳", "绿叶可降解手机壳", "磁吸卡包手机壳"],
            features=["3米防摔保护", "边框加高，保护屏幕和镜头", "超薄机身，轻松放进口袋",
                      "植物基材料，可自然降解", "背面自带卡槽", "内置磁铁，支持无线充电"],
            benefits=["手机摔了也不心慌", "展示手机原本的颜色", "出门只带手机就够了", "保持手机长久如新",
                      "环保又不牺牲防护"],
            audiences=["经常摔手机的人", "户外探险爱好者", "极简主义者", "注重环保的消费者", "忙碌的宝妈"],
            ctas=["快来找到适配你机型的款式", "第二件半价", "今日下单包邮", "新配色现已上架"],
        ),
    },
    "winter_jackets": {
        "en": Bank(
            names=["Polar Peak Down Parka", "Alpine Shell Jacket", "City Puffer Coat", "Glacier Ski Jacket"],
            features=["700-fill down that traps heat", "a waterproof and windproof shell",
                      "a hood lined with soft fleece", "sealed seams that keep out snow",
                      "a packable design that fits in its own pocket", "fleece-lined pockets for cold hands"],
            benefits=["stay warm on the coldest days", "walk through snow and sleet in comfort",
                      "look sharp on your winter commute", "wear fewer layers and move more freely",
                      "enjoy the outdoors all winter long"],
            audiences=["skiers and snowboarders", "city commuters", "winter hikers", "snow-loving kids",
                       "people in cold climates"],
            ctas=["Shop the winter sale now", "Order today for free shipping", "Find your fit in our size guide",
                  "Save 25% before the first snow"],
        ),
        "zh": Bank(
            names=["极地加厚羽绒服", "阿尔卑斯冲锋衣", "都市轻暖面包服", "冰川保暖滑雪服"],
            features=["700蓬松度羽绒，锁住热量", "防水防风面料", "帽子内衬柔软摇粒绒",
                      "压胶防水，雪水不渗入", "可收纳进自身口袋", "加深加绒口袋，暖手又方便"],
            benefits=["最冷的日子也暖暖的", "雨雪天出行也舒适", "冬日通勤也穿出好气质",
                      "少穿几层，行动更自在", "整个冬天都能畅玩户外"],
            audiences=["滑雪爱好者", "城市通勤族", "冬季徒步爱好者", "爱玩雪的孩子", "生活在北方的人"],
            ctas=["冬季大促进行中", "今日下单包邮", "查看尺码表找到合适尺码", "初雪前下单立享75折"],
        ),
    },
    "plant_pots": {
        "en": Bank(
            names=["Terra Clay Planter", "Nordic Ceramic Pot", "Self-Watering Herb Pot", "Hanging Macrame Planter"],
            features=["a drainage hole with a matching saucer", "breathable terracotta that protects roots",
                      "a hidden water tank that lasts two weeks", "a glaze in soft earthy colors",
                      "a hand-knotted cotton hanger", "sizes for everything from succulents to palms"],
            benefits=["keep your plants alive and thriving", "bring green into a small apartment",
                      "water less often and worry less", "grow fresh herbs on your windowsill",
                      "give your room a calm, natural look"],
            audiences=["new plant parents", "urban gardeners", "busy professionals", "home decor lovers",
                       "frequent travelers"],
            ctas=["Shop planters by size", "Buy two and save 15%", "Order today and ship free",
                  "Pair it with a plant from our nursery"],
        ),
        "zh": Bank(
            names=["陶土透气花盆", "北欧陶瓷花盆", "懒人自吸水香草盆", "手工编织吊篮花盆"],
            features=["底部带排水孔，配套托盘", "透气陶土，保护根系", "隐藏储水槽，两周不用浇水",
                      "釉面质感，柔和大地色", "棉绳手工编织挂绳", "从多肉到大型绿植都有合适尺寸"],
            benefits=["把植物养得生机勃勃", "给小公寓添一抹绿意", "少浇水，少操心", "在窗台种出新鲜香草",
                      "打造自然宁静的居家氛围"],
            audiences=["养花新手", "城市阳台园丁", "忙碌的上班族", "家居装饰爱好者", "经常出差的人"],
            ctas=["按尺寸挑选花盆", "任选两件享85折", "今日下单包邮", "搭配我们的绿植一起购买"],
        ),
    },
}


def _compose(rng: random.Random, lang: str, bank: Bank) -> str:
    """One ad: a random template filled with one random phrase per slot."""
    template = rng.choice(TEMPLATES[lang])
    return template.format(name=rng.choice(bank.names), feature=rng.choice(bank.features),
                           benefit=rng.choice(bank.benefits), audience=rng.choice(bank.audiences),
                           cta=rng.choice(bank.ctas))


def _sample(rng: random.Random, category: str, lang: str, seen: set[str]) -> list[dict]:
    """PER_CATEGORY new, short-enough ads for one category and language (fewer only if the bank is too small)."""
    bank, out = CATEGORIES[category][lang], []
    for _ in range(MAX_TRIES):
        if len(out) == PER_CATEGORY:
            break
        text = _compose(rng, lang, bank)
        if len(text) < MAX_CHARS[lang] and text not in seen:
            seen.add(text)
            out.append({"text": text, "lang": lang, "category": category})
    return out


def build(seed: int = 7) -> list[dict]:
    """The whole corpus, shuffled: the same seed always gives the same records in the same order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    records = [rec for category in CATEGORIES for lang in LANGS for rec in _sample(rng, category, lang, seen)]
    rng.shuffle(records)
    return records


def to_jsonl(records: list[dict]) -> str:
    """JSON Lines text exactly as shipped: one object per line, non-ASCII kept, trailing newline."""
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)


def main() -> None:
    """Regenerate the shipped file."""
    records = build()
    path = ad_copy_path()
    path.write_bytes(to_jsonl(records).encode("utf-8"))
    print(f"wrote {len(records)} lines to {path}")


if __name__ == "__main__":
    main()
