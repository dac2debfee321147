"""Word banks for the ad-writer's requests: products, audiences, keywords and filler phrases, English and Chinese.

The category banks of models/corpus/build_ad_copy.py give rich, category-specific ads; these banks add
hundreds of everyday products and short keywords, so the model learns to copy what a request names
rather than to recite the few dozen product names of the categories.
"""

from __future__ import annotations

PRODUCTS = {
    "en": [
        "thermos", "water bottle", "yoga mat", "desk lamp", "sneakers", "summer dress", "sunglasses",
        "rain jacket", "phone charger", "power bank", "coffee grinder", "frying pan", "blender", "air fryer",
        "camping tent", "sleeping bag", "hiking boots", "wool socks", "silk scarf", "leather handbag",
        "wallet", "notebook", "fountain pen", "board game", "jigsaw puzzle", "dog bed", "cat tree",
        "bike helmet", "electric toothbrush", "hair dryer", "perfume", "lipstick", "sunscreen",
        "face mask", "T-shirt", "jeans", "hoodie", "trendy clothing", "winter coat", "swimsuit",
        "baby stroller", "car seat", "toy robot", "building blocks", "gaming mouse", "mechanical keyboard",
        "webcam", "bluetooth speaker", "smart bulb", "robot vacuum", "standing desk", "office chair",
        "pillow", "duvet", "bath towel", "scented candle", "tea kettle", "rice cooker", "lunch box",
        "travel mug", "picnic blanket", "beach umbrella", "fishing rod", "tennis racket", "basketball",
        "jump rope", "dumbbells", "protein bar", "granola", "dark chocolate", "olive oil", "hot sauce",
        "honey", "green tea", "sparkling water", "vitamin gummies", "shampoo", "hand cream", "body lotion",
        "razor", "wristwatch", "necklace", "earrings", "backpack", "suitcase", "umbrella", "raincoat",
        "slippers", "pajamas", "linen shirt", "running shorts", "cycling gloves", "ski goggles",
        "snow boots", "garden hose", "flower seeds", "watering can", "bird feeder", "aquarium",
        "pet shampoo", "dog leash", "cat litter", "e-reader", "tablet stand", "phone case", "earbuds",
        "smart scale", "fitness tracker", "massage gun", "heating pad", "reading glasses", "wine glasses",
        "cutting board", "chef knife", "spice rack", "bread maker", "ice cream maker", "popcorn maker",
        "photo album", "picture frame", "wall clock", "floor lamp", "bookshelf", "sofa cover",
        "kids' raincoat", "school bag", "pencil case", "art supplies", "guitar", "ukulele", "headphones",
        "vinyl record player", "projector", "drone", "action camera", "tripod", "sewing kit", "knitting yarn",
    ],
    "zh": [
        "保温杯", "水杯", "瑜伽垫", "台灯", "运动鞋", "连衣裙", "太阳镜", "冲锋衣", "充电器", "充电宝",
        "磨豆机", "平底锅", "破壁机", "空气炸锅", "帐篷", "睡袋", "登山鞋", "羊毛袜", "丝巾", "手提包",
        "钱包", "笔记本", "钢笔", "桌游", "拼图", "狗窝", "猫爬架", "骑行头盔", "电动牙刷", "吹风机",
        "香水", "口红", "防晒霜", "面膜", "T恤", "牛仔裤", "卫衣", "服装", "潮流服装", "羽绒服", "泳衣",
        "婴儿推车", "安全座椅", "机器人玩具", "积木", "游戏鼠标", "机械键盘", "摄像头", "蓝牙音箱",
        "智能灯泡", "扫地机器人", "升降桌", "办公椅", "枕头", "被子", "浴巾", "香薰蜡烛", "烧水壶",
        "电饭煲", "饭盒", "随行杯", "野餐垫", "遮阳伞", "钓鱼竿", "网球拍", "篮球", "跳绳", "哑铃",
        "蛋白棒", "燕麦片", "黑巧克力", "橄榄油", "辣椒酱", "蜂蜜", "绿茶", "气泡水", "维生素软糖", "洗发水",
        "护手霜", "身体乳", "剃须刀", "手表", "项链", "耳环", "双肩包", "行李箱", "雨伞", "雨衣", "拖鞋",
        "睡衣", "亚麻衬衫", "运动短裤", "骑行手套", "滑雪镜", "雪地靴", "浇水壶", "花种子", "鸟食器",
        "鱼缸", "宠物沐浴露", "牵引绳", "猫砂", "电子书阅读器", "平板支架", "手机壳", "蓝牙耳机", "体脂秤",
        "运动手环", "筋膜枪", "暖宝宝", "老花镜", "红酒杯", "砧板", "厨师刀", "调料架", "面包机", "冰淇淋机",
        "爆米花机", "相册", "相框", "挂钟", "落地灯", "书架", "沙发套", "儿童雨衣", "书包", "笔袋", "画材",
        "吉他", "尤克里里", "头戴式耳机", "黑胶唱片机", "投影仪", "无人机", "运动相机", "三脚架", "针线包",
        "毛线", "夏装", "童装", "女装", "男装", "茶具", "月饼", "粽子", "坚果礼盒", "零食大礼包",
    ],
}

AUDIENCES = {
    "en": [
        "hikers", "students", "busy parents", "new parents", "gamers", "office workers", "travelers",
        "runners", "home cooks", "pet owners", "kids", "teens", "seniors", "remote workers", "campers",
        "cyclists", "gardeners", "fashion lovers", "coffee lovers", "book lovers", "music fans",
        "young professionals", "small business owners", "artists", "photographers", "new homeowners",
        "fitness fans", "yoga lovers", "commuters", "families", "couples", "night owls", "early risers",
        "beach lovers", "skiers", "anglers", "foodies", "bakers", "cat lovers", "dog lovers", "nurses",
        "teachers", "drivers", "college freshmen", "gift shoppers", "city dwellers", "outdoor lovers",
    ],
    "zh": [
        "徒步爱好者", "学生党", "忙碌的父母", "新手爸妈", "游戏玩家", "上班族", "旅行者", "跑步爱好者",
        "居家厨师", "铲屎官", "孩子", "年轻人", "老年人", "远程办公族", "露营爱好者", "骑行爱好者",
        "园艺爱好者", "时尚达人", "咖啡爱好者", "读书人", "音乐迷", "职场新人", "小店店主", "艺术爱好者",
        "摄影爱好者", "新房业主", "健身达人", "瑜伽爱好者", "通勤族", "三口之家", "情侣", "夜猫子",
        "早起族", "海边度假的人", "滑雪爱好者", "钓鱼爱好者", "吃货", "烘焙爱好者", "猫奴", "狗狗主人",
        "护士", "老师", "司机", "大一新生", "送礼人士", "都市白领", "户外爱好者", "宝妈",
    ],
}

KEYWORDS = {
    "en": [
        "leak-proof", "24 h hot", "lightweight", "eco-friendly", "summer sale", "trendy", "free shipping",
        "50% off", "handmade", "waterproof", "quick-dry", "breathable", "organic", "sugar-free",
        "foldable", "portable", "extra large", "whisper quiet", "long battery life", "fast charging",
        "soft cotton", "recycled materials", "limited edition", "new arrival", "best seller",
        "easy to clean", "dishwasher safe", "non-stick", "kid-safe", "vegan", "gluten-free",
        "two-year warranty", "buy one get one free", "made to last", "slim fit", "one size fits all",
        "bright colors", "classic design", "gift-ready box", "back to school", "holiday deal",
        "spring collection", "keeps drinks cold", "fits in any bag", "scratch-resistant", "anti-slip",
        "UV protection", "all-natural", "hypoallergenic", "smart app control",
    ],
    "zh": [
        "防漏", "24小时保温", "轻便", "环保", "夏季销售", "潮流", "包邮", "五折", "手工制作", "防水",
        "速干", "透气", "有机", "无糖", "可折叠", "便携", "超大容量", "静音", "超长续航", "快充", "纯棉",
        "再生材料", "限量款", "新品上市", "爆款", "易清洗", "可进洗碗机", "不粘锅", "儿童安全", "纯素",
        "无麸质", "两年质保", "买一送一", "经久耐用", "修身", "均码", "色彩明亮", "经典款", "礼盒装",
        "开学季", "节日特惠", "春季新款", "冰爽保冷", "小巧好收纳", "耐刮", "防滑", "防紫外线", "天然成分",
        "低敏配方", "智能App控制", "高颜值", "性价比高", "百搭", "显瘦",
    ],
}

# What a product is made of or what it does: "bamboo toothbrush", "竹制牙刷". Joined to products at
# random, they make product names training has not seen, which the model can only copy.
MODIFIERS = {
    "en": ["bamboo", "stainless steel", "wireless", "noise-cancelling", "organic cotton", "ceramic", "solar",
           "foldable", "glass", "wooden", "leather", "merino wool", "silicone", "cast iron", "recycled",
           "smart", "mini", "heated", "linen", "titanium", "kids'", "vintage", "waterproof", "electric",
           "hand-painted", "rechargeable", "compact", "cordless", "insulated", "magnetic"],
    "zh": ["竹制", "不锈钢", "无线", "降噪", "有机棉", "陶瓷", "太阳能", "折叠", "玻璃", "实木", "真皮", "美利奴羊毛",
           "硅胶", "铸铁", "再生", "智能", "迷你", "加热", "亚麻", "钛合金", "儿童", "复古", "防水", "电动", "手绘",
           "充电式", "便携式", "无绳", "保温", "磁吸"],
}
# Words before an audience: "eco-conscious families", "爱环保的家庭".
AUDIENCE_MODIFIERS = {
    "en": ["eco-conscious", "busy", "young", "budget-minded", "stylish", "first-time", "active", "creative",
           "health-conscious", "tech-savvy", "adventurous", "city", "weekend"],
    "zh": ["爱环保的", "忙碌的", "年轻的", "精打细算的", "爱美的", "第一次尝试的", "爱运动的", "有创意的", "注重健康的",
           "爱尝鲜的", "爱冒险的", "城市里的", "周末出游的"],
}
AUDIENCE_NOUNS = {
    "en": ["families", "parents", "students", "shoppers", "travelers", "couples", "workers", "cooks", "gamers",
           "runners", "readers", "drivers", "grandparents", "teens", "pet owners"],
    "zh": ["家庭", "父母", "学生", "消费者", "旅行者", "情侣", "打工人", "厨房新手", "玩家", "跑者", "读者", "司机",
           "爷爷奶奶", "青少年", "宠物主人"],
}
# Keywords with a number: "5000 mAh", "500毫升", each unit with numbers that make sense for it.
COUNTS = {"mAh": [3000, 5000, 10000, 20000], "ml": [250, 350, 500, 750, 1000], "h": [8, 12, 24, 30, 48],
           "off": [10, 15, 20, 30, 50], "years": [1, 2, 3, 5, 10], "g": [80, 150, 220, 300, 500],
           "W": [20, 30, 65, 100, 1200], "days": [7, 15, 30, 90], "colors": [3, 5, 8, 12], "L": [2, 3, 5, 20, 40]}
MEASURES = {
    "en": [("{n} mAh", "mAh"), ("{n} ml", "ml"), ("{n} h battery", "h"), ("{n}% off", "off"),
           ("{n}-year warranty", "years"), ("only {n} g", "g"), ("{n} W", "W"), ("{n}-day returns", "days"),
           ("{n} colors", "colors"), ("{n} L", "L")],
    "zh": [("{n}毫安", "mAh"), ("{n}毫升", "ml"), ("续航{n}小时", "h"), ("立减{n}元", "off"), ("质保{n}年", "years"),
           ("仅重{n}克", "g"), ("{n}瓦", "W"), ("{n}天无理由退货", "days"), ("{n}种颜色", "colors"), ("{n}升", "L")],
}
PLAIN_FREE = {
    "en": ["plastic-free", "soft bristles", "non-toxic", "easy setup", "ultra thin", "gift for dad", "pet friendly",
           "zero waste", "cruelty-free", "all-day comfort", "loud and clear", "made in Italy", "fair trade",
           "locally made", "easy to carry", "stays crisp", "no assembly needed", "mid-autumn festival",
           "family size", "low sugar"],
    "zh": ["无塑料", "软毛", "无毒", "安装简单", "超薄", "送爸爸", "宠物友好", "零浪费", "不做动物测试", "全天舒适",
           "音质清晰", "意大利制造", "公平贸易", "本地制造", "方便携带", "保持酥脆", "免安装", "中秋节", "家庭装", "低糖"],
}

# Made-up brand pieces: joined at random, they give names no line of training has seen, so the model
# must copy the brand from the request.
BRAND_PARTS = {
    "en": (["Kes", "Lu", "Vey", "Or", "Nim", "Sol", "Bri", "Ta", "Quin", "Mar", "Ze", "Ash", "Ro", "Fen",
            "Ca", "Del", "Ivo", "Pax", "Sa", "Tor"],
           ["trel", "mo", "ra", "bit", "ble", "ix", "dale", "va", "ton", "len", "ora", "wick", "na", "ley",
            "ro", "mere", "tis", "ly", "den", "cor"]),
    "zh": (list("青禾云木星光悦优麦朵森暖初拾山溪橙柚米糖晴鹿"), list("语舍品坊记家屋谷集然宜纪选匠晨田格里野")),
}

# For products without a category bank: a detail (EN noun phrase after "with"; ZH a short clause),
# a benefit (EN bare verb phrase; ZH a phrase after 让你/帮你) and a call to action.
DETAILS = {
    "en": ["a design that lasts for years", "a clean, modern look", "a price that fits any budget",
           "materials chosen with care", "a finish you will love", "thoughtful details everywhere",
           "quality you can feel", "a size that is just right", "colors to match any style",
           "a build that is tough but light", "a fit that feels made for you", "a one-year guarantee"],
    "zh": ["做工精细", "品质可靠", "简约时尚的设计", "用料讲究", "细节处处用心", "手感一流", "大小刚刚好",
           "多种颜色可选", "结实又轻巧", "一年质保", "价格实惠", "颜值与实力并存"],
}
BENEFITS = {
    "en": ["make every day a little easier", "get more out of every day", "treat yourself to something better",
           "enjoy it for years to come", "save time and money", "look good and feel great",
           "stay ready for anything", "bring a smile to every day", "do more with less effort",
           "travel light and worry less", "relax and enjoy the moment", "keep life simple"],
    "zh": ["每天都轻松一点", "把日子过得更精致", "省时又省心", "用得更久更安心", "随时随地好状态",
           "每天都有好心情", "轻装出行更自在", "生活更简单", "享受惬意时光", "花更少的钱买到更好的品质",
           "颜值和实用兼得", "忙碌中也能好好犒劳自己"],
}
CTAS = {
    "en": ["Order today", "Shop now", "Get yours today", "Grab yours while stocks last",
           "Add it to your cart now", "Order now with free returns", "Buy now and save",
           "Try it today", "Pick your color now", "Order now and ship free"],
    "zh": ["立即下单", "马上抢购", "快来选购", "库存有限，先到先得", "现在加入购物车", "下单即享七天无理由退换",
           "立即购买更优惠", "今天就试试", "快来挑选你喜欢的颜色", "今日下单包邮"],
}

# Short exchanges for the chat page: a greeting or a question about the assistant gets a short answer
# that says what to ask for.
SMALL_TALK = {
    "en": [
        (["Hi", "Hello", "Hi there", "Hello!", "Hey", "hi", "hello", "hey there", "Good morning"],
         ["Hello! Tell me a product, who it is for and a few keywords, and I will write an ad for it.",
          "Hi! Which product should I write an ad for? Add the audience and a few keywords if you like."]),
        (["What can you do?", "Who are you?", "What do you do?", "Help", "help", "what can you do"],
         ["I write short ads. Give me a product, an audience and a few keywords, for example: "
          "Write an ad for a thermos for hikers: leak-proof, 24 h hot.",
          "I am an ad writer. Name a product and its audience, add keywords, and I will write the copy."]),
        (["Thanks", "Thank you", "Thanks!", "Great, thanks"],
         ["You are welcome! Send another product whenever you like.",
          "Glad to help. Which product is next?"]),
    ],
    "zh": [
        (["你好", "您好", "嗨", "你好！", "在吗", "早上好", "哈喽"],
         ["你好！告诉我产品、目标人群和几个关键词，我来帮你写广告。",
          "您好！想为哪款产品写广告？可以附上目标人群和关键词。"]),
        (["你能做什么？", "你是谁？", "你会什么？", "帮助"],
         ["我专门写简短的广告文案。告诉我产品、人群和关键词，例如：为徒步爱好者写一条保温杯的广告：防漏，24小时保温。",
          "我是广告文案助手。说出产品和目标人群，再加几个关键词，我就能写出广告。"]),
        (["谢谢", "谢谢你", "多谢！", "太好了，谢谢"],
         ["不客气！有新产品随时发给我。", "很高兴能帮上忙，下一个产品是什么？"]),
    ],
}

SYSTEM_PROMPTS = {
    "en": ["You are a helpful assistant.", "You are a copywriter who writes short, friendly ads.",
           "You write ad copy for an online shop."],
    "zh": ["你是一个乐于助人的助手。", "你是一名擅长写简短广告的文案。", "你为网店撰写广告文案。"],
}
